//! Serves the key-value store: `kv-server --addr 127.0.0.1:50054`.

use clap::Parser;
use examples::proto::kv::KvServer;
use examples::MemoryKv;
use examples::Transport;

#[derive(Parser)]
#[command(about = "Serve an in-memory key-value store over rust-rpc's TCP transport or gRPC")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50054")]
    addr: String,
    /// The transport to serve.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    examples::serve(
        args.transport,
        &args.addr,
        KvServer::new(MemoryKv::default()),
    )
    .await
}
