//! Every interop case with rust-rpc on both sides, over loopback: the baseline that the runs
//! against grpcio (`interop/run.sh`) build on.

use rust_rpc::grpc::{Encoding, GrpcChannel, Server};
use rust_rpc_interop::pb::grpc::testing::TestServiceServer;
use rust_rpc_interop::{run_case, Interop, CASES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_our_own_server() {
    let server = Server::builder()
        .add_service(TestServiceServer::new(Interop::default()))
        .send_compressed(Encoding::Gzip)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap();
    let channel = GrpcChannel::connect(server.local_addr()).await.unwrap();
    let compressing = GrpcChannel::builder(server.local_addr())
        .send_compressed(Encoding::Gzip)
        .connect_lazy();
    let mut failures = Vec::new();
    for case in CASES {
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            run_case(case, &channel, &compressing),
        )
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => failures.push(format!("{case}: {reason}")),
            Err(_) => failures.push(format!("{case}: took more than 20 s")),
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
    server.shutdown().await.unwrap();
}
