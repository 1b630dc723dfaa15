//! Serves the key-value store: `kv-server --addr 127.0.0.1:50054`.

use clap::Parser;
use examples::proto::kv::KvServer;
use examples::MemoryKv;

#[derive(Parser)]
#[command(about = "Serve an in-memory key-value store over rust-rpc's TCP transport")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50054")]
    addr: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = rust_rpc::tcp::Server::builder()
        .add_service(KvServer::new(MemoryKv::default()))
        .bind(&args.addr)
        .await?;
    examples::serve_until_ctrl_c(server).await
}
