//! Serves the pi calculator: `pi-server --addr 127.0.0.1:50052`.

use clap::Parser;
use examples::proto::pi::PiCalculatorServer;
use examples::PiCalculator;

#[derive(Parser)]
#[command(about = "Serve the pi calculator over rust-rpc's TCP transport")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50052")]
    addr: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = rust_rpc::tcp::Server::builder()
        .add_service(PiCalculatorServer::new(PiCalculator))
        .bind(&args.addr)
        .await?;
    examples::serve_until_ctrl_c(server).await
}
