//! One side of the generator benchmark, as a user's build script runs it: parse `.proto` files
//! with protox and write Rust, either with rust-rpc's builder library or with prost-build.
//! `benches/generate.sh` runs both sides (and rust-rpc's CLI) on the same file list, in turn.
//!
//! `generate ours|prost ROOT LIST OUT`: ROOT is the include directory, LIST a file with one
//! path per line relative to ROOT, OUT the directory to write to. Prints the seconds taken by
//! parsing and by generating, for the profile of where time goes; the script times the whole
//! process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [side, root, list, out] = args.as_slice() else {
        eprintln!("usage: generate ours|prost ROOT LIST OUT");
        return ExitCode::from(2);
    };
    let root = PathBuf::from(root);
    let files: Vec<PathBuf> = match std::fs::read_to_string(list) {
        Ok(text) => text.lines().map(|l| root.join(l)).collect(),
        Err(e) => {
            eprintln!("cannot read {list}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let result = match side.as_str() {
        "ours" => ours(&files, &root, out),
        "prost" => prost(&files, &root, out),
        _ => Err(format!("unknown side {side}: ours or prost")),
    };
    match result {
        Ok(parse) => {
            let total = start.elapsed().as_secs_f64();
            eprintln!(
                "{side}: parse {parse:.2} s, generate {:.2} s",
                total - parse
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{side}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// rust-rpc's builder path, with its defaults (messages and services). Like prost-build, it
/// generates every file of the set, the imports of the listed files included, so both sides
/// do the same work. Returns the seconds spent parsing.
fn ours(files: &[PathBuf], root: &PathBuf, out: &str) -> Result<f64, String> {
    let start = Instant::now();
    let (set, _) = rust_rpc_compiler::parse_protos(files, &[root]).map_err(|e| e.render_plain())?;
    let parse = start.elapsed().as_secs_f64();
    let every: Vec<String> = set.file.iter().map(|f| f.name().to_owned()).collect();
    let output = rust_rpc_compiler::generate(&set, &every, &Default::default())
        .map_err(|e| e.render_plain())?;
    output.write_to(out).map_err(|e| e.render_plain())?;
    Ok(parse)
}

/// protox and prost-build, as prost's documentation pairs them (prost-build formats its output
/// with prettyplease). prost-build writes messages only: it has no service generator of its own.
fn prost(files: &[PathBuf], root: &PathBuf, out: &str) -> Result<f64, String> {
    let start = Instant::now();
    let set = protox::compile(files, [root]).map_err(|e| e.to_string())?;
    let parse = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    prost_build::Config::new()
        .out_dir(out)
        .include_file("_include.rs") // the module tree, as rust-rpc writes one
        .compile_fds(set)
        .map_err(|e| e.to_string())?;
    Ok(parse)
}
