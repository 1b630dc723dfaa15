//! Asks the pi calculator: `pi-client --addr 127.0.0.1:50052 10 100 1000`. The first number
//! goes through the unary `Calc`; all of them through the streaming `CalcStream`.

use rust_rpc::proto;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::pi::{PiCalculatorClient, PiRequest};
use examples::Transport;

#[derive(Parser)]
#[command(about = "Approximate pi on a pi server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    addr: String,
    /// The transport the server speaks.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// Numbers of series terms to try.
    #[arg(default_values_t = [10, 1000, 100000], allow_negative_numbers = true)]
    terms: Vec<i32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match examples::connect(args.transport, &args.addr).await {
        Ok(channel) => PiCalculatorClient::new(channel),
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let first = args.terms.first().copied().unwrap_or(10);
    let request = proto!(PiRequest { n: first });
    match client.calc(request).timeout(Duration::from_secs(5)).await {
        Ok(reply) => println!("Calc({first}) = {}", reply.value),
        Err(status) => {
            eprintln!("Calc({first}) failed: {status}");
            return ExitCode::FAILURE;
        }
    }

    // Every term count goes out as one request of the stream; answers come back in order.
    let requests: Vec<PiRequest> = args
        .terms
        .iter()
        .map(|&n| proto!(PiRequest { n }))
        .collect();
    let result = async {
        let mut replies = client
            .calc_stream(requests)
            .timeout(Duration::from_secs(30))
            .await?;
        let mut terms = args.terms.iter();
        while let Some(reply) = replies.message().await? {
            let n = terms.next().copied().unwrap_or_default();
            println!("CalcStream({n}) = {}", reply.value);
        }
        Ok::<_, rust_rpc::Status>(())
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("CalcStream failed: {status}");
            ExitCode::FAILURE
        }
    }
}
