//! `protoc-gen-rust-rpc`: the rust-rpc generator as a protoc plugin. All logic lives in
//! `rust_rpc_compiler::plugin`; this binary only moves bytes between protoc and it.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

// As for the CLI: generation allocates small nodes by the million.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> String {
    let mut text = rust_rpc_compiler::plugin::USAGE.to_owned();
    for (name, meaning) in rust_rpc_compiler::OPTIONS {
        text.push_str(&format!("    {name:<16} {meaning}\n"));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("protoc-gen-rust-rpc {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Run by hand rather than by protoc: explain instead of waiting for input.
        eprint!("{}", usage());
        return ExitCode::from(2);
    }
    let mut request = Vec::new();
    if let Err(e) = stdin.read_to_end(&mut request) {
        eprintln!("protoc-gen-rust-rpc: cannot read the request from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let response = rust_rpc_compiler::plugin::run(&request);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&response).and_then(|()| stdout.flush()) {
        eprintln!("protoc-gen-rust-rpc: cannot write the response to stdout: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
