//! Calls the echo service: `echo-client --addr 127.0.0.1:50051 hello` calls one server;
//! `echo-client --target etcd://127.0.0.1:2379/services/echo --policy weighted --calls 1000`
//! spreads calls over every server the target names and counts who answered.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use examples::auth::BearerToken;
use examples::proto::echo::{AddRequest, EchoRequest, EchoServiceClient};
use examples::Transport;
use rust_rpc::balance::{BalancedChannel, Policy};
use rust_rpc::RpcChannel;
use rust_rpc::{interceptor::Intercepted, proto};

#[derive(Parser)]
#[command(about = "Call Echo and Add on an echo server, or Echo on many")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50051", conflicts_with = "target")]
    addr: String,
    /// Many servers: `static:///HOST:PORT,HOST:PORT`, `dns:///NAME:PORT` or
    /// `etcd://HOST:PORT/SERVICE`. Makes `--calls` Echo calls and prints, last, one line per
    /// endpoint with its count of answered calls, and `ok=N failed=M`.
    #[arg(long)]
    target: Option<String>,
    /// How calls to a `--target` are spread.
    #[arg(long, value_enum, default_value = "round_robin")]
    policy: PolicyArg,
    /// Echo calls to make with `--target`.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Calls in flight at once with `--target`.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// The transport the server speaks (with `--target`, the one used for endpoints whose
    /// registry entry names none).
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// A bearer token to send with every call (`authorization: Bearer TOKEN`).
    #[arg(long)]
    token: Option<String>,
    /// What Echo should echo.
    #[arg(default_value = "hello")]
    message: String,
    /// First operand of Add.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    a: i32,
    /// Second operand of Add.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    b: i32,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    /// One server takes every call; the next takes over when it fails.
    #[value(name = "pick_first", alias = "pick-first")]
    PickFirst,
    /// Each server in turn.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// At random, in proportion to the servers' weights.
    Weighted,
    /// The less loaded of two servers chosen at random.
    #[value(name = "least_loaded", alias = "least-loaded")]
    LeastLoaded,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match &args.target {
        Some(target) => many(&args, target).await,
        None => one(&args).await,
    }
}

/// `--target`: `--calls` Echo calls over every endpoint of the target.
async fn many(args: &Args, target: &str) -> ExitCode {
    let builder = match BalancedChannel::builder(target) {
        Ok(builder) => builder,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match args.policy {
        PolicyArg::PickFirst => Policy::PickFirst,
        PolicyArg::RoundRobin => Policy::RoundRobin,
        PolicyArg::Weighted => Policy::Weighted,
        PolicyArg::LeastLoaded => Policy::LeastLoaded,
    };
    let transport = match args.transport {
        Transport::Tcp => rust_rpc::balance::Transport::Tcp,
        Transport::Grpc => rust_rpc::balance::Transport::Grpc,
    };
    let channel = builder.policy(policy).transport(transport).build();
    let client = Arc::new(EchoServiceClient::new(with_token(channel, &args.token)));
    let counts = Arc::new(std::sync::Mutex::new(BTreeMap::<String, usize>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, counts, failed, next) =
            (client.clone(), counts.clone(), failed.clone(), next.clone());
        let (calls, message) = (args.calls, args.message.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < calls {
                let request = proto!(EchoRequest {
                    message: message.clone(),
                });
                match client.echo(request).timeout(Duration::from_secs(5)).await {
                    Ok(reply) => {
                        *counts
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(reply.served_by)
                            .or_default() += 1;
                    }
                    Err(status) => {
                        eprintln!("Echo failed: {status}");
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ok: usize = counts.values().sum();
    for (endpoint, count) in &counts {
        println!("{endpoint} {count}");
    }
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    println!("ok={ok} failed={failed}");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--addr`: Echo and Add on one server.
async fn one(args: &Args) -> ExitCode {
    let channel = match examples::connect(args.transport, &args.addr).await {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let client = EchoServiceClient::new(with_token(channel, &args.token));
    let timeout = Duration::from_secs(5);
    let request = proto!(EchoRequest {
        message: args.message.clone(),
    });
    match client.echo(request).timeout(timeout).await {
        Ok(reply) => println!("Echo: {}", reply.message),
        Err(status) => {
            eprintln!("Echo failed: {status}");
            return ExitCode::FAILURE;
        }
    }
    let request = proto!(AddRequest {
        a: args.a,
        b: args.b,
    });
    match client.add(request).timeout(timeout).await {
        Ok(reply) => println!("Add: {} + {} = {}", args.a, args.b, reply.result),
        Err(status) => {
            eprintln!("Add failed: {status}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `channel`, adding the bearer token to every call if there is one.
fn with_token(channel: impl RpcChannel, token: &Option<String>) -> Arc<dyn RpcChannel> {
    match token {
        Some(token) => Arc::new(Intercepted::new(channel).with(BearerToken(token.clone()))),
        None => Arc::new(channel),
    }
}
