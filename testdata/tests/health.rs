//! gRPC's health service over the gRPC transport: `Check` answers from what the reporter set,
//! `Watch` sends the current status at once and every change after it.

mod common;

use common::bounded;
use rust_rpc::grpc::health::{self, pb::HealthCheckRequest, HealthClient, ServingStatus};
use rust_rpc::grpc::{GrpcChannel, Server};
use rust_rpc::Code;

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn check_and_watch_follow_the_reporter() {
    bounded(async {
        let (reporter, service) = health::service();
        reporter.set("echo.EchoService", ServingStatus::SERVING);
        let server = Server::builder()
            .add_service(service)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let client = HealthClient::new(GrpcChannel::connect(server.local_addr()).await.unwrap());

        let status = |s: &'static str| {
            let client = &client;
            async move { client.check(request(s)).await.map(|r| r.status) }
        };
        assert_eq!(status("").await.unwrap(), ServingStatus::SERVING);
        assert_eq!(
            status("echo.EchoService").await.unwrap(),
            ServingStatus::SERVING
        );
        assert_eq!(status("nope").await.unwrap_err().code(), Code::NotFound);

        let mut echo = client.watch(request("echo.EchoService")).await.unwrap();
        let mut later = client.watch(request("later.Service")).await.unwrap();
        let next = |m: Option<health::pb::HealthCheckResponse>| m.expect("a status").status;
        assert_eq!(next(echo.message().await.unwrap()), ServingStatus::SERVING);
        assert_eq!(
            next(later.message().await.unwrap()),
            ServingStatus::SERVICE_UNKNOWN
        );
        reporter.set("echo.EchoService", ServingStatus::NOT_SERVING);
        assert_eq!(
            next(echo.message().await.unwrap()),
            ServingStatus::NOT_SERVING
        );
        // Setting the same status again sends nothing; a change to another service reaches
        // only its own watchers.
        reporter.set("echo.EchoService", ServingStatus::NOT_SERVING);
        reporter.set("later.Service", ServingStatus::SERVING);
        assert_eq!(next(later.message().await.unwrap()), ServingStatus::SERVING);
        reporter.set("echo.EchoService", ServingStatus::SERVING);
        assert_eq!(next(echo.message().await.unwrap()), ServingStatus::SERVING);
        reporter.remove("later.Service");
        assert_eq!(
            next(later.message().await.unwrap()),
            ServingStatus::SERVICE_UNKNOWN
        );
        assert_eq!(
            status("later.Service").await.unwrap_err().code(),
            Code::NotFound
        );

        // Watches end when their clients drop them, so shutdown does not wait on them.
        drop(echo);
        drop(later);
        tokio::time::timeout(std::time::Duration::from_secs(5), server.shutdown())
            .await
            .expect("shutdown waited on a dropped watch")
            .unwrap();
    })
    .await;
}
