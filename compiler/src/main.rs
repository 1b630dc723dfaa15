//! The `rust-rpc-compiler` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rust_rpc_compiler::{Config, MapType};

/// Generate Rust message code for the rust-rpc runtime from .proto files.
///
/// Writes one `<package>.rs` per proto package and an include file that stitches them into a
/// module tree, so that `include!("<out>/_include.rs")` brings everything in. No protoc is
/// needed: files are parsed with protox, and google/protobuf/*.proto are always importable.
#[derive(Parser, Debug)]
#[command(name = "rust-rpc-compiler", version, about, long_about)]
struct Cli {
    /// The .proto files to generate code for.
    #[arg(required = true, value_name = "PROTO")]
    files: Vec<PathBuf>,

    /// Directory to resolve imports against; repeat for several. Defaults to the current
    /// directory.
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    includes: Vec<PathBuf>,

    /// Directory to write the generated files into; created if missing.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: PathBuf,

    /// Rust type for `map<K, V>` fields.
    #[arg(long, value_enum, default_value_t = MapKind::Hash)]
    map_type: MapKind,

    /// Whether messages keep fields their schema does not declare and write them back.
    #[arg(long, value_enum, default_value_t = UnknownFields::Keep)]
    unknown_fields: UnknownFields,

    /// Name of the include file that stitches the package files into one module tree.
    #[arg(long, value_name = "NAME", default_value = "_include.rs")]
    include_file: String,

    /// Use Rust types from elsewhere for a proto path, as PROTO_PATH=RUST_PATH (for example
    /// `.my.common=::common_protos`). Repeatable; `.google.protobuf=::rust_rpc::wkt` is built in.
    #[arg(long = "extern-path", value_name = "PROTO=RUST")]
    extern_paths: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MapKind {
    /// std::collections::HashMap
    Hash,
    /// std::collections::BTreeMap (ordered; deterministic encoding)
    Btree,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum UnknownFields {
    /// Keep unknown fields and re-emit them on encode.
    Keep,
    /// Drop unknown fields while decoding.
    Discard,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", err.render_plain());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), rust_rpc_compiler::Error> {
    let mut config = Config {
        map_type: match cli.map_type {
            MapKind::Hash => MapType::Hash,
            MapKind::Btree => MapType::BTree,
        },
        unknown_fields: matches!(cli.unknown_fields, UnknownFields::Keep),
        include_file: cli.include_file,
        ..Config::default()
    };
    for spec in &cli.extern_paths {
        config
            .extern_paths
            .push(rust_rpc_compiler::parse_extern_path(spec)?);
    }
    let output = rust_rpc_compiler::compile_protos_with(&cli.files, &cli.includes, &config)?;
    for warning in &output.warnings {
        eprintln!("{warning}");
    }
    // Everything is generated before anything is written, so a failure leaves no partial output.
    output.write_to(&cli.out_dir)
}
