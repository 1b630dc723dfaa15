//! The `rust-rpc-compiler` command line; the logic lives in `rust_rpc_compiler::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match rust_rpc_compiler::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", err.render_plain());
            ExitCode::FAILURE
        }
    }
}
