//! Drives every call shape of the streaming example:
//! `numbers-client --addr 127.0.0.1:50053 3 1 4 1 5`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::numbers::{Number, Numbers, NumbersStub};
use rust_rpc::tcp::TcpChannel;
use rust_rpc::{RpcController, Status};

#[derive(Parser)]
#[command(about = "Call all four kinds of method on the streaming example's server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50053")]
    addr: String,
    /// The numbers to send.
    #[arg(default_values_t = [3, 1, 4, 1, 5], allow_negative_numbers = true)]
    numbers: Vec<i64>,
}

fn number(value: i64) -> Number {
    Number {
        value,
        ..Default::default()
    }
}

async fn run(stub: &NumbersStub<TcpChannel>, numbers: &[i64]) -> Result<(), Status> {
    let first = numbers.first().copied().unwrap_or(0);
    let squared = stub
        .square(
            &mut RpcController::with_timeout(Duration::from_secs(5)),
            number(first),
        )
        .await?;
    println!("Square({first}) = {}", squared.value);

    // Server streaming: print responses as they arrive.
    let (tx, mut rx) = rust_rpc::stream::channel(8);
    let count = numbers.len() as i64;
    let mut ctrl = RpcController::with_timeout(Duration::from_secs(5));
    let (call, fib) = tokio::join!(stub.fibonacci(&mut ctrl, number(count), tx), async {
        let mut seen = Vec::new();
        while let Some(n) = rx.message().await? {
            seen.push(n.value.to_string());
        }
        Ok::<_, Status>(seen)
    });
    call?;
    println!("Fibonacci({count}) = {}", fib?.join(" "));

    // Client streaming.
    let (tx, requests) = rust_rpc::stream::channel(8);
    let mut ctrl = RpcController::with_timeout(Duration::from_secs(5));
    let (stats, sent) = tokio::join!(stub.summarize(&mut ctrl, requests), async move {
        for &n in numbers {
            tx.send(&number(n)).await?;
        }
        Ok::<_, Status>(())
    });
    sent?;
    let stats = stats?;
    println!(
        "Summarize = count {} sum {} mean {}",
        stats.count, stats.sum, stats.mean
    );

    // Bidirectional: one answer per number, in step.
    let (req_tx, requests) = rust_rpc::stream::channel(1);
    let (resp_tx, mut responses) = rust_rpc::stream::channel(1);
    let mut ctrl = RpcController::with_timeout(Duration::from_secs(5));
    let (call, maxima) = tokio::join!(stub.running_max(&mut ctrl, requests, resp_tx), async move {
        let mut maxima = Vec::new();
        for &n in numbers {
            req_tx.send(&number(n)).await?;
            if let Some(max) = responses.message().await? {
                maxima.push(max.value.to_string());
            }
        }
        Ok::<_, Status>(maxima)
    });
    call?;
    println!("RunningMax = {}", maxima?.join(" "));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let stub = match TcpChannel::connect(&args.addr).await {
        Ok(channel) => NumbersStub::new(channel),
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    match run(&stub, &args.numbers).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("failed: {status}");
            ExitCode::FAILURE
        }
    }
}
