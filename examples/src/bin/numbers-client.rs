//! Drives every call shape of the streaming example:
//! `numbers-client --addr 127.0.0.1:50053 3 1 4 1 5`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::numbers::{Number, NumbersClient};
use examples::{Channel, Transport};
use rust_rpc::{proto, Status};

#[derive(Parser)]
#[command(about = "Call all four kinds of method on the streaming example's server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50053")]
    addr: String,
    /// The transport the server speaks.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// The numbers to send.
    #[arg(default_values_t = [3, 1, 4, 1, 5], allow_negative_numbers = true)]
    numbers: Vec<i64>,
}

fn number(value: i64) -> Number {
    proto!(Number { value })
}

async fn run(client: &NumbersClient<Channel>, numbers: &[i64]) -> Result<(), Status> {
    let timeout = Duration::from_secs(5);

    // Unary.
    let first = numbers.first().copied().unwrap_or(0);
    let squared = client.square(number(first)).timeout(timeout).await?;
    println!("Square({first}) = {}", squared.value);

    // Server streaming: the stream comes back at once; read it to the end.
    let count = numbers.len() as i64;
    let mut fibonacci = client.fibonacci(number(count)).timeout(timeout).await?;
    let mut seen = Vec::new();
    while let Some(n) = fibonacci.message().await? {
        seen.push(n.value.to_string());
    }
    println!("Fibonacci({count}) = {}", seen.join(" "));

    // Client streaming: any iterator of requests.
    let requests: Vec<Number> = numbers.iter().map(|&n| number(n)).collect();
    let stats = client.summarize(requests).timeout(timeout).await?;
    println!(
        "Summarize = count {} sum {} mean {}",
        stats.count, stats.sum, stats.mean
    );

    // Bidirectional, in step: send one number, read its answer, then the next.
    let (sender, requests) = rust_rpc::stream::channel();
    let mut maxima = client.running_max(requests).timeout(timeout).await?;
    let mut seen = Vec::new();
    for &n in numbers {
        sender.send(number(n)).await?;
        if let Some(max) = maxima.message().await? {
            seen.push(max.value.to_string());
        }
    }
    drop(sender);
    while maxima.message().await?.is_some() {}
    println!("RunningMax = {}", seen.join(" "));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match examples::connect(args.transport, &args.addr).await {
        Ok(channel) => NumbersClient::new(channel),
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    match run(&client, &args.numbers).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("failed: {status}");
            ExitCode::FAILURE
        }
    }
}
