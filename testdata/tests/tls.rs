//! TLS with certificates made by the test, on gRPC and on the TCP transport: calls work when
//! the client trusts the server's CA, mutual TLS turns away a client without a certificate, the
//! server's name is verified, a client and server that disagree about TLS say so, and ALPN
//! keeps each transport's clients off the other's servers.

mod common;

use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rust_rpc::grpc::{GrpcChannel, Server};
use rust_rpc::tls::{ClientTls, ServerTls};
use rust_rpc::Code;
use rust_rpc_testdata::ours::echo_service::{EchoRequest, EchoServiceClient, EchoServiceServer};
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer};

/// A CA, and certificates (PEM chain, PEM key) it issues.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn serve(tls: ServerTls) -> rust_rpc::grpc::ServerHandle {
    Server::builder()
        .add_service(CalculatorServer::new(Calc::new(Arc::default())))
        .tls(tls)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

async fn double(channel: GrpcChannel) -> Result<i64, rust_rpc::Status> {
    let client = CalculatorClient::new(channel);
    Ok(client.double(number(21)).await?.value)
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_its_ca() {
    bounded(async {
        let ca = Ca::new();
        let (cert, key) = ca.issue(&["localhost"]);
        let server = serve(
            ServerTls::with_client_ca(cert.as_bytes(), key.as_bytes(), ca.pem.as_bytes()).unwrap(),
        )
        .await;
        let port = server.local_addr().port();

        let (client_cert, client_key) = ca.issue(&["client"]);
        let tls = ClientTls::with_identity(
            ca.pem.as_bytes(),
            client_cert.as_bytes(),
            client_key.as_bytes(),
        )
        .unwrap();
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(tls)
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap(), 42);

        // Without a certificate, and from a CA the server does not know.
        let anonymous = ClientTls::with_ca_pem(ca.pem.as_bytes()).unwrap();
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(anonymous)
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap_err().code(), Code::Unavailable);
        let stranger = Ca::new();
        let (cert, key) = stranger.issue(&["client"]);
        let tls =
            ClientTls::with_identity(ca.pem.as_bytes(), cert.as_bytes(), key.as_bytes()).unwrap();
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(tls)
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap_err().code(), Code::Unavailable);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_server_name_is_verified() {
    bounded(async {
        let ca = Ca::new();
        let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
        let server = serve(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()).await;
        let port = server.local_addr().port();
        let trusting = || ClientTls::with_ca_pem(ca.pem.as_bytes()).unwrap();

        // By name and by address, as the certificate says.
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(trusting())
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap(), 42);
        let channel = GrpcChannel::builder(server.local_addr())
            .tls(trusting())
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap(), 42);
        // A name the certificate does not carry, and a CA that did not issue it.
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(trusting().server_name("other.example"))
            .connect_lazy();
        let err = double(channel).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(err.message().contains("TLS"), "{err}");
        let other = ClientTls::with_ca_pem(Ca::new().pem.as_bytes()).unwrap();
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(other)
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap_err().code(), Code::Unavailable);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_tls_mismatch_is_named() {
    bounded(async {
        let ca = Ca::new();
        let (cert, key) = ca.issue(&["localhost"]);
        let tls_server = serve(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()).await;
        let plain_server = start(Arc::default()).await;

        // Cleartext to a TLS server, and TLS to a cleartext one.
        let err = double(GrpcChannel::builder(tls_server.local_addr()).connect_lazy())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        let tls = ClientTls::with_ca_pem(ca.pem.as_bytes()).unwrap();
        let channel = GrpcChannel::builder(("localhost", plain_server.grpc_addr().port()))
            .tls(tls)
            .connect_lazy();
        let err = double(channel).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(err.message().contains("does the server use TLS?"), "{err}");

        // A key that is not a key, and a CA file without certificates, are errors that say
        // which input was wrong.
        let err = ServerTls::from_pem(cert.as_bytes(), b"-----BEGIN NONSENSE-----").unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        let err = ClientTls::with_ca_pem(key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("CA certificates"), "{err}");
        tls_server.shutdown().await.unwrap();
        plain_server.shutdown().await.unwrap();
    })
    .await;
}

async fn serve_tcp(tls: ServerTls) -> rust_rpc::tcp::ServerHandle {
    rust_rpc::tcp::Server::builder()
        .add_service(CalculatorServer::new(Calc::new(Arc::default())))
        .add_service(EchoServiceServer::new(Echo))
        .tls(tls)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

/// The TCP transport over TLS: every call kind through mutual TLS, a large message, the same
/// refusals as gRPC's, and ALPN keeping each transport's clients off the other's servers.
#[tokio::test]
async fn the_tcp_transport_speaks_tls_too() {
    use rust_rpc::tcp::TcpChannel;
    bounded(async {
        let ca = Ca::new();
        let (cert, key) = ca.issue(&["localhost"]);
        let mtls =
            ServerTls::with_client_ca(cert.as_bytes(), key.as_bytes(), ca.pem.as_bytes()).unwrap();
        let server = serve_tcp(mtls.clone()).await;
        let port = server.local_addr().port();
        let (client_cert, client_key) = ca.issue(&["client"]);
        let identity = || {
            ClientTls::with_identity(
                ca.pem.as_bytes(),
                client_cert.as_bytes(),
                client_key.as_bytes(),
            )
            .unwrap()
        };
        let client = CalculatorClient::new(
            TcpChannel::builder(("localhost", port))
                .tls(identity())
                .connect()
                .await
                .unwrap(),
        );
        assert_eq!(client.double(number(21)).await.unwrap().value, 42);
        let mut countdown = client.countdown(number(3)).await.unwrap();
        let mut seen = Vec::new();
        while let Some(n) = countdown.message().await.unwrap() {
            seen.push(n.value);
        }
        assert_eq!(seen, [3, 2, 1, 0]);
        let total = client.sum((1..=1000).map(number).collect::<Vec<_>>());
        assert_eq!(total.await.unwrap().value, 500_500);
        // A message larger than a TLS record and the socket's buffers.
        let echo = EchoServiceClient::new(
            TcpChannel::builder(("localhost", port))
                .tls(identity())
                .connect_lazy(),
        );
        let request = EchoRequest {
            message: "x".repeat(3 << 20),
            ..Default::default()
        };
        let reply = echo.echo(request).await.unwrap();
        assert_eq!(reply.message.len(), (3 << 20) + ", welcome!".len());

        // Refused: no client certificate, a name the certificate does not carry, cleartext.
        let anonymous = ClientTls::with_ca_pem(ca.pem.as_bytes()).unwrap();
        let channel = TcpChannel::builder(("localhost", port))
            .tls(anonymous)
            .connect_lazy();
        let err = CalculatorClient::new(channel)
            .double(number(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        let channel = TcpChannel::builder(("localhost", port))
            .tls(identity().server_name("other.example"))
            .connect_lazy();
        let err = CalculatorClient::new(channel)
            .double(number(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.message().contains("TLS"), "{err}");
        let channel = TcpChannel::builder(server.local_addr()).connect_lazy();
        let err = CalculatorClient::new(channel)
            .double(number(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");

        // ALPN: a gRPC client at this server, and a TCP client at a gRPC server, both with
        // certificates the servers accept.
        let channel = GrpcChannel::builder(("localhost", port))
            .tls(identity())
            .connect_lazy();
        assert_eq!(double(channel).await.unwrap_err().code(), Code::Unavailable);
        let grpc_server = serve(mtls).await;
        let channel = TcpChannel::builder(("localhost", grpc_server.local_addr().port()))
            .tls(identity())
            .connect_lazy();
        let err = CalculatorClient::new(channel)
            .double(number(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");

        // A graceful shutdown ends the TLS connection cleanly once its calls are done.
        drop(countdown);
        server.shutdown().await.unwrap();
        grpc_server.shutdown().await.unwrap();
    })
    .await;
}
