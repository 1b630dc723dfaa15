//! Serves the echo service: `echo-server --addr 127.0.0.1:50051`.

use clap::Parser;
use examples::proto::echo::EchoServiceServer;
use examples::Echo;

#[derive(Parser)]
#[command(about = "Serve the echo service over rust-rpc's TCP transport")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = rust_rpc::tcp::Server::builder()
        .add_service(EchoServiceServer::new(Echo))
        .bind(&args.addr)
        .await?;
    examples::serve_until_ctrl_c(server).await
}
