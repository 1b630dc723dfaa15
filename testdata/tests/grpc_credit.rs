//! HTTP/2 flow-control credit on the gRPC server: a stream whose handler stops reading gets
//! about a window (1 MiB) and no more, and the credit comes back when the stream is reset. A
//! raw HTTP/2 client fills stream after stream, resets each, and the same connection still
//! carries a call afterwards: twenty streams of over 1 MiB each are more than the server's
//! 16 MiB connection window, so credit kept by a reset stream would stall the later ones.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use rust_rpc::grpc::Server;
use rust_rpc::Message;
use rust_rpc_testdata::ours::services::{CalculatorServer, Number};

fn prefixed(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn request(addr: std::net::SocketAddr, method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/services.Calculator/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn credit_comes_back_from_streams_reset_early() {
    bounded(async {
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(Arc::default())))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let addr = server.local_addr();
        let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The handlers' answers pile up unread in this client: many small DATA frames, which h2
        // would take for abuse under its default budget.
        let (send, connection) = h2::client::Builder::new()
            .data_frame_budget(1 << 30)
            .handshake::<_, Bytes>(socket)
            .await
            .unwrap();
        tokio::spawn(connection);

        // 3 MiB of small messages per stream: the handler answers each one, nobody reads the
        // answers, so it soon stops reading, and the server stops giving credit after about a
        // window (1 MiB).
        let one = prefixed(&number(1).encode_to_vec());
        let chunk = Bytes::from(one.repeat(3 * 1024 * 1024 / one.len()));
        for _ in 0..20 {
            let mut send = send.clone().ready().await.unwrap();
            let (_response, mut stream) = send
                .send_request(request(addr, "RunningTotal"), false)
                .unwrap();
            stream.reserve_capacity(chunk.len());
            let mut sent = 0;
            while sent < chunk.len() {
                // The server's window for this stream is 1 MiB: stop once it stops granting.
                let granted = tokio::time::timeout(
                    std::time::Duration::from_millis(100),
                    std::future::poll_fn(|cx| stream.poll_capacity(cx)),
                )
                .await;
                let Ok(Some(Ok(granted))) = granted else {
                    break;
                };
                let n = granted.min(chunk.len() - sent);
                stream
                    .send_data(chunk.slice(sent..sent + n), false)
                    .unwrap();
                sent += n;
            }
            assert!(
                (1 << 20..2 << 20).contains(&sent),
                "a stream that is not read took {sent} bytes"
            );
            stream.send_reset(h2::Reason::CANCEL);
        }

        // The connection still has credit for a call.
        let mut send = send.ready().await.unwrap();
        let (response, mut stream) = send.send_request(request(addr, "Double"), false).unwrap();
        stream
            .send_data(Bytes::from(prefixed(&number(4).encode_to_vec())), true)
            .unwrap();
        let mut body = response.await.unwrap().into_body();
        let data = body.data().await.unwrap().unwrap();
        assert_eq!(Number::decode(&data[5..]).unwrap().value, 8);
        server.shutdown().await.unwrap();
    })
    .await;
}
