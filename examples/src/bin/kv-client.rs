//! Uses the key-value store, one call of each kind:
//! `kv-client --addr 127.0.0.1:50054` (or `--local` for an in-process store, chosen at run
//! time behind the same type).

use std::time::Duration;

use clap::Parser;
use examples::proto::kv::{self, Entry, GetRequest, KvClient, KvDyn, KvStub, PutRequest};
use examples::MemoryKv;
use examples::{Channel, Transport};
use rust_rpc::{proto, RpcController, Status};

#[derive(Parser)]
#[command(about = "Write, read and watch keys on a key-value server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50054")]
    addr: String,
    /// The transport the server speaks.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// Use an in-process store instead of a server (for the trait form only).
    #[arg(long)]
    local: bool,
}

fn put(key: &str, value: &str) -> PutRequest {
    proto!(PutRequest {
        entry: Some(proto!(Entry {
            key: key.into(),
            value: value.as_bytes().to_vec(),
        })),
    })
}

/// The direct client: every call kind, with no task and no sleep.
async fn direct(client: &KvClient<Channel>) -> Result<(), Status> {
    // Unary, with a deadline.
    let written = client
        .put(put("a/1", "one"))
        .timeout(Duration::from_secs(5))
        .await?;
    println!("Put a/1: version {}", written.version);
    let read = client.get(proto!(GetRequest { key: "a/1".into() })).await?;
    let value = read
        .entry
        .map(|e| String::from_utf8_lossy(&e.value).into_owned());
    println!("Get a/1: {}", value.unwrap_or_default());

    // Server streaming: the stream comes back at once; once its headers are in, the watch is
    // in place and every later write reaches it.
    let mut events = client
        .watch(proto!(kv::WatchRequest {
            prefix: "a/".into(),
        }))
        .await?;
    events.headers().await?;

    // Client streaming: any iterator of requests.
    let batch = client
        .put_many(vec![
            put("a/2", "two"),
            put("b/1", "other"),
            put("a/3", "three"),
        ])
        .await?;
    println!("PutMany: {} written", batch.written);

    for _ in 0..2 {
        if let Some(event) = events.message().await? {
            if let Some(kv::event::Change::Entry(entry)) = event.change {
                println!(
                    "Watch: {} = {}",
                    entry.key,
                    String::from_utf8_lossy(&entry.value)
                );
            }
        }
    }
    // Dropping the stream ends the watch on the server.
    Ok(())
}

/// Code written against the trait, run on whatever implementation was chosen at run time.
async fn through_the_trait(kv: &KvDyn) -> Result<(), Status> {
    use kv::Kv;
    let mut ctrl = RpcController::with_timeout(Duration::from_secs(5));
    let written = kv.put(&mut ctrl, put("c/1", "dyn")).await?;
    let read = kv
        .get(
            &mut RpcController::new(),
            proto!(GetRequest { key: "c/1".into() }),
        )
        .await?;
    let value = read
        .entry
        .map(|e| String::from_utf8_lossy(&e.value).into_owned());
    println!(
        "Trait: c/1 = {} (version {})",
        value.unwrap_or_default(),
        written.version
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = async {
        if args.local {
            return through_the_trait(&KvDyn::new(MemoryKv::default())).await;
        }
        let channel = examples::connect(args.transport, &args.addr)
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {}: {e}", args.addr)))?;
        direct(&KvClient::new(channel.clone())).await?;
        through_the_trait(&KvDyn::new(KvStub::new(channel))).await
    };
    match result.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("failed: {status}");
            std::process::ExitCode::FAILURE
        }
    }
}
