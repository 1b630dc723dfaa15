//! Counts heap allocations per unary call over TCP, client and server together: a figure that
//! repeats exactly, unlike timings on these machines. By size too: an allocation of 1 KiB or
//! more takes glibc's slower path, and bytes per call are memory traffic.
//!
//! `IN_FLIGHT=64 cargo run --release -p rust-rpc-benches --bin allocs` (1 in flight by default)

use std::sync::atomic::Ordering;

use rust_rpc_benches::counting::{Counting, ALLOCATIONS, SIZES};

#[global_allocator]
static GLOBAL: Counting = Counting;

use rust_rpc::RpcController;
use rust_rpc_benches::ours::echo::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

struct Echo;

impl EchoService for Echo {
    async fn echo(
        &self,
        _: &mut RpcController,
        request: EchoRequest,
    ) -> Result<EchoResponse, rust_rpc::Status> {
        Ok(EchoResponse {
            message: request.message,
            ..Default::default()
        })
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = rust_rpc::tcp::Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .bind("127.0.0.1:0")
            .await
            .expect("bind")
            .spawn()
            .expect("spawn");
        let client = EchoServiceClient::new(
            rust_rpc::tcp::TcpChannel::connect(server.local_addr())
                .await
                .expect("connect"),
        );
        let call = || {
            client.echo(EchoRequest {
                message: "hello, benchmark".into(),
                ..Default::default()
            })
        };
        for _ in 0..1000 {
            call().await.expect("echo");
        }
        let calls = rust_rpc_benches::setting("CALLS", 10_000);
        let in_flight = rust_rpc_benches::setting("IN_FLIGHT", 1);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let sizes_before: Vec<u64> = SIZES.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        if in_flight > 1 {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..in_flight {
                let client = client.clone();
                tasks.spawn(async move {
                    for _ in 0..calls / in_flight {
                        client
                            .echo(EchoRequest {
                                message: "hello, benchmark".into(),
                                ..Default::default()
                            })
                            .await
                            .expect("echo");
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        } else {
            for _ in 0..calls {
                call().await.expect("echo");
            }
        }
        let per_call = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / calls as f64;
        println!("allocations per unary call (client and server): {per_call:.1}");
        println!("by size (bytes: allocations per call):");
        for (class, (n, before)) in SIZES.iter().zip(sizes_before).enumerate() {
            let per_call = (n.load(Ordering::Relaxed) - before) as f64 / calls as f64;
            if per_call >= 0.05 {
                let low = class * 16;
                if class == 64 {
                    println!("  {low}+: {per_call:.1}");
                } else {
                    println!("  {low}-{}: {per_call:.1}", low + 15);
                }
            }
        }
        server.shutdown().await.expect("shutdown");
    });
}
