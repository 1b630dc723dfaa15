//! Serves the streaming example: `numbers-server --addr 127.0.0.1:50053`.

use clap::Parser;
use examples::proto::numbers::NumbersServer;
use examples::Numbers;

#[derive(Parser)]
#[command(about = "Serve the streaming example over rust-rpc's TCP transport")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50053")]
    addr: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = rust_rpc::tcp::Server::builder()
        .add_service(NumbersServer::new(Numbers))
        .bind(&args.addr)
        .await?;
    examples::serve_until_ctrl_c(server).await
}
