//! Generates all of envoy's data-plane API, and what it imports, with the build-script builder. Run through run.sh,
//! which downloads the files and sets ENVOY_PROTOS.

use std::path::{Path, PathBuf};

fn protos_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            protos_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() -> Result<(), rust_rpc_compiler::Error> {
    println!("cargo::rerun-if-env-changed=ENVOY_PROTOS");
    let root = PathBuf::from(
        std::env::var_os("ENVOY_PROTOS")
            .expect("ENVOY_PROTOS names envoy-types' proto/ (see run.sh)"),
    );
    let includes: Vec<PathBuf> = [
        "data-plane-api",
        "xds",
        "googleapis",
        "protoc-gen-validate",
        "cel-spec/proto",
        "client_model",
        "opentelemetry-proto",
        "ratelimit/api",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    // Every file of every root, so that the packages envoy's files import are generated too.
    let mut files = Vec::new();
    for dir in &includes {
        protos_under(dir, &mut files);
    }
    files.sort();
    rust_rpc_compiler::Builder::new().compile(&files, &includes)
}
