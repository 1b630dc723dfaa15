//! The interop test server: `grpc.testing.TestService` over gRPC, driven by the gRPC
//! project's flags, so any implementation's interop runner can use it.

use clap::Parser;
use rust_rpc::grpc::health::ServingStatus;
use rust_rpc::grpc::{Encoding, Server};
use rust_rpc::tls::ServerTls;
use rust_rpc_interop::pb::grpc::testing::TestServiceServer;
use rust_rpc_interop::Interop;

/// Serves `grpc.testing.TestService` on 0.0.0.0:PORT until interrupted.
#[derive(Parser)]
struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Serve over TLS, with --tls_cert_file and --tls_key_file.
    #[arg(long = "use_tls", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    use_tls: bool,
    /// Certificate chain (PEM) for TLS.
    #[arg(long = "tls_cert_file")]
    tls_cert_file: Option<String>,
    /// Private key (PEM) for TLS.
    #[arg(long = "tls_key_file")]
    tls_key_file: Option<String>,
    /// Compress every response whose request does not say otherwise with this encoding
    /// (`gzip`), for clients that accept it; not one of gRPC's interop flags. Without it,
    /// responses are compressed (with gzip) only where their requests ask.
    #[arg(long)]
    compression: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // gRPC's health service beside the test service, as interop runners expect.
    let (reporter, health) = rust_rpc::grpc::health::service();
    reporter.set("grpc.testing.TestService", ServingStatus::SERVING);
    let encoding = match &args.compression {
        None => Encoding::Gzip,
        Some(name) => Encoding::from_name(name).unwrap_or_else(|| {
            eprintln!("interop-server: unknown --compression {name:?} (try gzip)");
            std::process::exit(2);
        }),
    };
    let interop = Interop {
        compress_by_default: args.compression.is_some(),
    };
    let mut builder = Server::builder()
        .add_service(TestServiceServer::new(interop))
        .add_service(health)
        .send_compressed(encoding);
    if args.use_tls {
        let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
            eprintln!("interop-server: --use_tls needs --tls_cert_file and --tls_key_file");
            std::process::exit(2);
        };
        let tls = ServerTls::from_pem(&read(cert), &read(key)).unwrap_or_else(|e| {
            eprintln!("interop-server: {e}");
            std::process::exit(2);
        });
        builder = builder.tls(tls);
    }
    let server = builder.bind(("0.0.0.0", args.port)).await?;
    println!("listening on {}", server.local_addr()?.port());
    server
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("interop-server: cannot read {path}: {e}");
        std::process::exit(2);
    })
}
