//! Unary echo over loopback, in one run: rust-rpc's TCP transport, rust-rpc's gRPC transport,
//! tonic (gRPC over HTTP/2, both on the `h2` crate), and a raw TCP ping-pong with a 4-byte length prefix (the floor no protocol can beat).
//!
//! For each: sequential latency (p50, p99) over many calls, and calls per second with 1 and
//! with 64 calls in flight on one connection. Run pinned to one core, as the machines here
//! flip between fast and slow modes when a round trip crosses cores:
//!
//! ```text
//! taskset -c 0 cargo bench -p rust-rpc-benches --bench rpc
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_rpc::RpcController;
use rust_rpc_benches::{ours, tonic_echo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE: &str = "hello, benchmark";
const SEQUENTIAL_CALLS: usize = 20_000;
const WARM_UP_CALLS: usize = 2_000;
const THROUGHPUT_TIME: Duration = Duration::from_secs(3);

/// Latency percentiles and throughput of one contender.
struct Figures {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    rate_1: f64,
    rate_64: f64,
}

/// Times `SEQUENTIAL_CALLS` one-at-a-time calls and returns (p50, p99).
async fn sequential<F, Fut>(mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARM_UP_CALLS {
        call().await;
    }
    let mut samples = Vec::with_capacity(SEQUENTIAL_CALLS);
    for _ in 0..SEQUENTIAL_CALLS {
        let start = Instant::now();
        call().await;
        samples.push(start.elapsed());
    }
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// Calls per second with `in_flight` tasks each calling in a loop on a shared client.
async fn throughput<F, Fut>(in_flight: usize, call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (call, stop, count) = (call.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call().await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(THROUGHPUT_TIME).await;
    let done = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    done as f64 / elapsed.as_secs_f64()
}

struct Echo;

impl ours::echo::EchoService for Echo {
    async fn echo(
        &self,
        _ctrl: &mut RpcController,
        request: ours::echo::EchoRequest,
    ) -> Result<ours::echo::EchoResponse, rust_rpc::Status> {
        Ok(ours::echo::EchoResponse {
            message: request.message,
            ..Default::default()
        })
    }
}

async fn bench_ours() -> Figures {
    let server = rust_rpc::tcp::Server::builder()
        .add_service(ours::echo::EchoServiceServer::new(Echo))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
        .spawn()
        .expect("spawn");
    let channel = rust_rpc::tcp::TcpChannel::connect(server.local_addr())
        .await
        .expect("connect");
    let figures = bench_client(channel, "rust-rpc").await;
    server.shutdown().await.expect("shutdown");
    figures
}

/// rust-rpc's gRPC transport: the same service and client over HTTP/2.
async fn bench_ours_grpc() -> Figures {
    let server = rust_rpc::grpc::Server::builder()
        .add_service(ours::echo::EchoServiceServer::new(Echo))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
        .spawn()
        .expect("spawn");
    let channel = rust_rpc::grpc::GrpcChannel::connect(server.local_addr())
        .await
        .expect("connect");
    let figures = bench_client(channel, "rust-rpc gRPC").await;
    server.shutdown().await.expect("shutdown");
    figures
}

async fn bench_client(channel: impl rust_rpc::RpcChannel + Clone, name: &'static str) -> Figures {
    use ours::echo::{EchoRequest, EchoServiceClient};
    let client = EchoServiceClient::new(channel);
    let call = move || {
        let client = client.clone();
        async move {
            let request = EchoRequest {
                message: MESSAGE.to_owned(),
                ..Default::default()
            };
            let reply = client.echo(request).await.expect("echo");
            assert_eq!(reply.message.len(), MESSAGE.len());
        }
    };
    let (p50, p99) = sequential(&call).await;
    let rate_1 = throughput(1, call.clone()).await;
    let rate_64 = throughput(64, call).await;
    Figures {
        name,
        p50,
        p99,
        rate_1,
        rate_64,
    }
}

#[derive(Default)]
struct TonicEcho;

#[tonic::async_trait]
impl tonic_echo::echo::echo_service_server::EchoService for TonicEcho {
    async fn echo(
        &self,
        request: tonic::Request<tonic_echo::echo::EchoRequest>,
    ) -> Result<tonic::Response<tonic_echo::echo::EchoResponse>, tonic::Status> {
        Ok(tonic::Response::new(tonic_echo::echo::EchoResponse {
            message: request.into_inner().message,
            // Empty, as in the rust-rpc server: nothing on the wire.
            served_by: String::new(),
        }))
    }

    async fn add(
        &self,
        request: tonic::Request<tonic_echo::echo::AddRequest>,
    ) -> Result<tonic::Response<tonic_echo::echo::AddResponse>, tonic::Status> {
        let r = request.into_inner();
        Ok(tonic::Response::new(tonic_echo::echo::AddResponse {
            result: r.a.wrapping_add(r.b),
        }))
    }
}

async fn bench_tonic() -> Figures {
    use tonic_echo::echo::echo_service_client::EchoServiceClient;
    use tonic_echo::echo::echo_service_server::EchoServiceServer;
    use tonic_echo::echo::EchoRequest;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoServiceServer::new(TonicEcho))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let client = EchoServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let call = move || {
        let mut client = client.clone();
        async move {
            let reply = client
                .echo(EchoRequest {
                    message: MESSAGE.to_owned(),
                })
                .await
                .expect("echo");
            assert_eq!(reply.into_inner().message.len(), MESSAGE.len());
        }
    };
    let (p50, p99) = sequential(&call).await;
    let rate_1 = throughput(1, call.clone()).await;
    let rate_64 = throughput(64, call).await;
    let _ = stop.send(());
    let _ = server.await;
    Figures {
        name: "tonic",
        p50,
        p99,
        rate_1,
        rate_64,
    }
}

/// Writes `in_flight` copies of `frame` and reads as many back.
async fn ping(stream: &mut TcpStream, frame: &[u8], in_flight: usize) {
    let frames = frame.repeat(in_flight);
    let mut replies = vec![0u8; frames.len()];
    stream.write_all(&frames).await.expect("write");
    stream.read_exact(&mut replies).await.expect("read");
}

/// The floor: one length-prefixed frame out, the same frame back, no protocol at all.
async fn bench_raw() -> Figures {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        // Buffered both ways, and replies flushed only when no more requests are buffered:
        // the least work a length-prefixed protocol can do.
        let mut reader = tokio::io::BufReader::new(read_half);
        let mut writer = tokio::io::BufWriter::new(write_half);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let Ok(len) = reader.read_u32().await else {
                return;
            };
            let len = len as usize;
            if reader.read_exact(&mut buf[..len]).await.is_err() {
                return;
            }
            if writer.write_u32(len as u32).await.is_err()
                || writer.write_all(&buf[..len]).await.is_err()
            {
                return;
            }
            if reader.buffer().is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
    });
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    // The same payload size as an echo request inside our envelope.
    let payload = vec![b'x'; MESSAGE.len() + 40];
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    for _ in 0..WARM_UP_CALLS {
        ping(&mut stream, &frame, 1).await;
    }
    let mut samples = Vec::with_capacity(SEQUENTIAL_CALLS);
    for _ in 0..SEQUENTIAL_CALLS {
        let start = Instant::now();
        ping(&mut stream, &frame, 1).await;
        samples.push(start.elapsed());
    }
    samples.sort();
    let (p50, p99) = (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    );
    // Throughput: with 64 in flight the frames are pipelined, 64 out then 64 back.
    let mut rates = [0.0; 2];
    for (slot, in_flight) in [1usize, 64].into_iter().enumerate() {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < THROUGHPUT_TIME {
            ping(&mut stream, &frame, in_flight).await;
            calls += in_flight as u64;
        }
        rates[slot] = calls as f64 / start.elapsed().as_secs_f64();
    }
    drop(stream);
    let _ = server.await;
    Figures {
        name: "raw TCP",
        p50,
        p99,
        rate_1: rates[0],
        rate_64: rates[1],
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; measure only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // One thread for clients and servers alike: pinned to one core, more worker threads only
    // add operating-system context switches between them, which makes every contender's
    // round trips flip between a fast and a slow mode.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(only) = std::env::var("RPC_BENCH_ONLY") {
        // For profilers: run just one contender, e.g. `RPC_BENCH_ONLY=rust-rpc`.
        let figures = runtime.block_on(async {
            match only.as_str() {
                "raw" => bench_raw().await,
                "tonic" => bench_tonic().await,
                "grpc" => bench_ours_grpc().await,
                _ => bench_ours().await,
            }
        });
        println!(
            "{}: {:.0} calls/s with 64 in flight",
            figures.name, figures.rate_64
        );
        return;
    }
    let figures = runtime.block_on(async {
        [
            bench_raw().await,
            bench_ours().await,
            bench_ours_grpc().await,
            bench_tonic().await,
        ]
    });
    let [raw, ours, grpc, tonic] = &figures;
    println!("| transport | p50 | p99 | calls/s, 1 in flight | calls/s, 64 in flight |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for f in &figures {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} |",
            f.name,
            micros(f.p50),
            micros(f.p99),
            f.rate_1,
            f.rate_64
        );
    }
    println!();
    println!("| ratio | p50 | p99 | calls/s, 1 in flight | calls/s, 64 in flight |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, ours, base) in [
        ("rust-rpc / raw TCP", ours, raw),
        ("rust-rpc / tonic", ours, tonic),
        ("rust-rpc gRPC / tonic", grpc, tonic),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            ours.p50.as_secs_f64() / base.p50.as_secs_f64(),
            ours.p99.as_secs_f64() / base.p99.as_secs_f64(),
            ours.rate_1 / base.rate_1,
            ours.rate_64 / base.rate_64
        );
    }
}
