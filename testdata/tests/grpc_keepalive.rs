//! Peers that vanish without closing their connection, and the server's limit of concurrent
//! streams.
//!
//! A loopback proxy stands between client and server and can freeze: from then on it forwards
//! nothing and closes nothing, as a crashed host or a dropped route would look. Keepalive PINGs
//! must notice and end the calls on that connection (a client's with `UNAVAILABLE`, not at its
//! deadline; a server's handler sees the cancellation), and the client's next call takes a new
//! connection.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rust_rpc::grpc::{GrpcChannel, Limits, Server, ServerHandle};
use rust_rpc::Code;
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards every connection to `target` until `frozen` is set; then holds them open and
/// forwards nothing more. Connections made after `frozen` is cleared work again.
async fn proxy(target: SocketAddr, frozen: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (from_client, to_client) = inbound.into_split();
            let (from_server, to_server) = outbound.into_split();
            tokio::spawn(pipe(from_client, to_server, frozen.clone()));
            tokio::spawn(pipe(from_server, to_client, frozen.clone()));
        }
    });
    addr
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            // Keeps both sockets open, forwarding nothing, for the rest of the test.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn serve(limits: Limits, events: Arc<Events>) -> ServerHandle {
    Server::builder()
        .add_service(CalculatorServer::new(Calc::new(events)))
        .limits(limits)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_client_with_keepalive_fails_calls_to_a_vanished_server() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = serve(Limits::default(), events.clone()).await;
        let frozen = Arc::new(AtomicBool::new(false));
        let addr = proxy(server.local_addr(), frozen.clone()).await;
        let channel = GrpcChannel::builder(addr)
            .keepalive(Duration::from_millis(100), Duration::from_millis(300))
            .connect()
            .await
            .unwrap();
        let client = CalculatorClient::new(channel);
        assert_eq!(client.double(number(4)).await.unwrap().value, 8);

        // A call that waits for its end; the server goes silent while it is open.
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .double(number(-2))
                    .timeout(Duration::from_secs(15))
                    .await
            })
        };
        wait_for(|| events.started.load(Ordering::SeqCst) == 2).await;
        frozen.store(true, Ordering::SeqCst);
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.message().contains("keepalive"), "{err}");

        // The next call opens a new connection.
        frozen.store(false, Ordering::SeqCst);
        assert_eq!(client.double(number(5)).await.unwrap().value, 10);
        server
            .shutdown_timeout(Duration::from_millis(100))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_server_with_keepalive_ends_the_calls_of_a_vanished_client() {
    bounded(async {
        let events = Arc::new(Events::default());
        let limits =
            Limits::default().keepalive(Duration::from_millis(100), Duration::from_millis(300));
        let server = serve(limits, events.clone()).await;
        let frozen = Arc::new(AtomicBool::new(false));
        let addr = proxy(server.local_addr(), frozen.clone()).await;
        let client = CalculatorClient::new(GrpcChannel::connect(addr).await.unwrap());
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .double(number(-2))
                    .timeout(Duration::from_secs(60))
                    .await
            })
        };
        wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
        frozen.store(true, Ordering::SeqCst);
        // The handler waits for the end of its call, which only keepalive can tell it.
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 1).await;
        wait_for(|| events.finished.load(Ordering::SeqCst) == 1).await;
        call.abort();
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn calls_beyond_the_servers_stream_limit_wait_for_a_free_stream() {
    bounded(async {
        let events = Arc::new(Events::default());
        let mut limits = Limits::default();
        limits.max_concurrent_streams = 1;
        let server = serve(limits, events.clone()).await;
        let client =
            CalculatorClient::new(GrpcChannel::connect(server.local_addr()).await.unwrap());
        let first = {
            let client = client.clone();
            tokio::spawn(async move { client.double(number(-2)).await })
        };
        wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;

        // The one stream is taken: a second call waits for it, and its deadline ends the wait.
        let err = client
            .double(number(3))
            .timeout(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
        assert_eq!(events.started.load(Ordering::SeqCst), 1);

        // Once the first call is over, the next one runs; the one that gave up while it
        // waited never reached the server.
        first.abort();
        wait_for(|| events.finished.load(Ordering::SeqCst) == 1).await;
        assert_eq!(client.double(number(3)).await.unwrap().value, 6);
        assert_eq!(events.started.load(Ordering::SeqCst), 2);
        server.shutdown().await.unwrap();
    })
    .await;
}
