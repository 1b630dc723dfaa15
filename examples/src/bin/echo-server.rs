//! Serves the echo service: `echo-server --addr 127.0.0.1:50051`, and with
//! `--register etcd://127.0.0.1:2379` lists itself in etcd for `echo-client --target etcd://...`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::echo::EchoServiceServer;
use examples::{Echo, Listing, Transport};

#[derive(Parser)]
#[command(about = "Serve the echo service over rust-rpc's TCP transport or gRPC")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// The transport to serve.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// List this server in etcd (`etcd://HOST:PORT`, several endpoints separated by commas)
    /// while it runs.
    #[arg(long, value_name = "etcd://HOST:PORT")]
    register: Option<String>,
    /// The service key to list it under.
    #[arg(long, default_value = "services/echo")]
    service: String,
    /// Its share of the calls of clients that balance by weight.
    #[arg(long, default_value_t = 1)]
    weight: u32,
    /// The address clients dial, if not `--addr` (a server bound to 0.0.0.0, or behind NAT).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Seconds the registry keeps the entry of a server that died without deregistering.
    #[arg(long, default_value_t = 10)]
    ttl: u64,
    /// Serve only calls that carry `authorization: Bearer TOKEN` (others get UNAUTHENTICATED).
    #[arg(long)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let unspecified = args
        .addr
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified());
    if args.register.is_some() && args.advertise.is_none() && unspecified {
        return Err(std::io::Error::other(format!(
            "--addr {} is not an address clients can dial: add --advertise HOST:PORT",
            args.addr
        )));
    }
    let listing = match &args.register {
        None => None,
        Some(etcd) => Some(Listing {
            registry: rust_rpc::etcd::Registry::new(etcd)
                .map_err(std::io::Error::other)?
                .ttl(Duration::from_secs(args.ttl)),
            service: args.service.clone(),
            weight: args.weight,
            advertise: args.advertise.clone(),
        }),
    };
    let echo = Echo::new();
    let served_by = echo.served_by();
    let advertised = args.advertise.clone();
    examples::serve_with(
        args.transport,
        &args.addr,
        EchoServiceServer::new(echo),
        examples::Options {
            listing,
            token: args.token,
        },
        |local| {
            let _ = served_by.set(advertised.unwrap_or_else(|| local.to_owned()));
        },
    )
    .await
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.addr))
        }
        _ => e,
    })
}
