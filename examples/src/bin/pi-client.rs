//! Asks the pi calculator: `pi-client --addr 127.0.0.1:50052 10 100 1000`. The first number
//! goes through the unary `Calc`; all of them through the streaming `CalcStream`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::pi::{PiCalculator, PiCalculatorStub, PiRequest, PiResponse};
use rust_rpc::tcp::TcpChannel;
use rust_rpc::RpcController;

#[derive(Parser)]
#[command(about = "Approximate pi on a pi server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    addr: String,
    /// Numbers of series terms to try.
    #[arg(default_values_t = [10, 1000, 100000], allow_negative_numbers = true)]
    terms: Vec<i32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let stub = match TcpChannel::connect(&args.addr).await {
        Ok(channel) => PiCalculatorStub::new(channel),
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let first = args.terms.first().copied().unwrap_or(10);
    match stub
        .calc(
            &mut RpcController::with_timeout(Duration::from_secs(5)),
            PiRequest {
                n: first,
                ..Default::default()
            },
        )
        .await
    {
        Ok(reply) => println!("Calc({first}) = {}", reply.value),
        Err(status) => {
            eprintln!("Calc({first}) failed: {status}");
            return ExitCode::FAILURE;
        }
    }

    let (requests_tx, requests) = rust_rpc::stream::channel(8);
    let (responses_tx, mut responses) = rust_rpc::stream::channel::<PiResponse>(8);
    let mut ctrl = RpcController::with_timeout(Duration::from_secs(30));
    let terms = args.terms.clone();
    let send = async move {
        for n in terms {
            if requests_tx
                .send(&PiRequest {
                    n,
                    ..Default::default()
                })
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let receive = async {
        let mut terms = args.terms.iter();
        loop {
            match responses.message().await {
                Ok(Some(reply)) => println!(
                    "CalcStream({}) = {}",
                    terms.next().copied().unwrap_or_default(),
                    reply.value
                ),
                Ok(None) => return Ok(()),
                Err(status) => return Err(status),
            }
        }
    };
    let (call, (), received) = tokio::join!(
        stub.calc_stream(&mut ctrl, requests, responses_tx),
        send,
        receive
    );
    match call.and(received) {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("CalcStream failed: {status}");
            ExitCode::FAILURE
        }
    }
}
