//! The interop test client: runs one of the gRPC project's interop cases against a server and
//! exits 0 when it passes, or 1 with the reason.

use clap::Parser;
use rust_rpc::grpc::{Encoding, GrpcChannel};
use rust_rpc::tls::ClientTls;

/// Runs one interop test case against a gRPC server.
#[derive(Parser)]
struct Args {
    /// Host of the server.
    #[arg(long = "server_host", default_value = "localhost")]
    server_host: String,
    /// Port of the server.
    #[arg(long = "server_port")]
    server_port: u16,
    /// The case to run (see `rust_rpc_interop::CASES`), or `all`.
    #[arg(long = "test_case", default_value = "large_unary")]
    test_case: String,
    /// Connect over TLS (the server's CA from --ca_file).
    #[arg(long = "use_tls", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    use_tls: bool,
    /// Trust the test CA given by --ca_file (the project ships no test CA of its own).
    #[arg(long = "use_test_ca", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    use_test_ca: bool,
    /// CA certificate (PEM) to trust.
    #[arg(long = "ca_file")]
    ca_file: Option<String>,
    /// Server name to expect in the certificate.
    #[arg(long = "server_host_override")]
    server_host_override: Option<String>,
    /// Compress every request with this encoding (`gzip`); not one of gRPC's interop flags.
    #[arg(long)]
    compression: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut builder = GrpcChannel::builder((args.server_host.as_str(), args.server_port));
    if args.use_tls {
        // --use_test_ca names gRPC's own test CA; this project ships none, so the CA always
        // comes from --ca_file.
        let _ = args.use_test_ca;
        let Some(ca_file) = &args.ca_file else {
            eprintln!("interop-client: --use_tls needs --ca_file");
            std::process::exit(2);
        };
        let ca = std::fs::read(ca_file).unwrap_or_else(|e| {
            eprintln!("interop-client: cannot read {ca_file}: {e}");
            std::process::exit(2);
        });
        let mut tls = ClientTls::with_ca_pem(&ca).unwrap_or_else(|e| {
            eprintln!("interop-client: {e}");
            std::process::exit(2);
        });
        if let Some(name) = &args.server_host_override {
            tls = tls.server_name(name);
        }
        builder = builder.tls(tls);
    }
    if let Some(name) = &args.compression {
        let Some(encoding) = Encoding::from_name(name) else {
            eprintln!("interop-client: unknown --compression {name:?} (try gzip)");
            std::process::exit(2);
        };
        builder = builder.send_compressed(encoding);
    }
    // The cases that compress requests one by one go through a channel that can.
    let compressing = builder
        .clone()
        .send_compressed(Encoding::Gzip)
        .connect_lazy();
    let channel = builder.connect_lazy();
    let cases: Vec<&str> = if args.test_case == "all" {
        rust_rpc_interop::CASES.to_vec()
    } else {
        args.test_case.split(',').collect()
    };
    let mut failed = false;
    for case in cases {
        match rust_rpc_interop::run_case(case, &channel, &compressing).await {
            Ok(()) => println!("PASS {case}"),
            Err(reason) => {
                println!("FAIL {case}: {reason}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
