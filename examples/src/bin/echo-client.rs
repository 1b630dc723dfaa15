//! Calls the echo service: `echo-client --addr 127.0.0.1:50051 hello`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::proto::echo::{AddRequest, EchoRequest, EchoServiceClient};
use examples::Transport;

#[derive(Parser)]
#[command(about = "Call Echo and Add on an echo server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// The transport the server speaks.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// What Echo should echo.
    #[arg(default_value = "hello")]
    message: String,
    /// First operand of Add.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    a: i32,
    /// Second operand of Add.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    b: i32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let channel = match examples::connect(args.transport, &args.addr).await {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let client = EchoServiceClient::new(channel);
    let timeout = Duration::from_secs(5);
    let request = EchoRequest {
        message: args.message,
        ..Default::default()
    };
    match client.echo(request).timeout(timeout).await {
        Ok(reply) => println!("Echo: {}", reply.message),
        Err(status) => {
            eprintln!("Echo failed: {status}");
            return ExitCode::FAILURE;
        }
    }
    let request = AddRequest {
        a: args.a,
        b: args.b,
        ..Default::default()
    };
    match client.add(request).timeout(timeout).await {
        Ok(reply) => println!("Add: {} + {} = {}", args.a, args.b, reply.result),
        Err(status) => {
            eprintln!("Add failed: {status}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
