//! The interop test server: `grpc.testing.TestService` over gRPC, driven by the gRPC
//! project's flags, so any implementation's interop runner can use it.

use clap::Parser;
use rust_rpc::grpc::Server;
use rust_rpc_interop::pb::grpc::testing::TestServiceServer;
use rust_rpc_interop::Interop;

/// Serves `grpc.testing.TestService` on 0.0.0.0:PORT until interrupted.
#[derive(Parser)]
struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Serve over TLS (not yet supported: refused).
    #[arg(long = "use_tls", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    use_tls: bool,
    /// Certificate chain (PEM) for TLS.
    #[arg(long = "tls_cert_file")]
    tls_cert_file: Option<String>,
    /// Private key (PEM) for TLS.
    #[arg(long = "tls_key_file")]
    tls_key_file: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if args.use_tls {
        eprintln!("interop-server: TLS is not supported yet");
        std::process::exit(2);
    }
    let _ = (args.tls_cert_file, args.tls_key_file);
    let server = Server::builder()
        .add_service(TestServiceServer::new(Interop))
        .bind(("0.0.0.0", args.port))
        .await?;
    println!("listening on {}", server.local_addr()?.port());
    server
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
