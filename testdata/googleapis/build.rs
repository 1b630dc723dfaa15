//! Generates a slice of googleapis whose packages import each other (api, rpc, type,
//! longrunning, logging, pubsub, spanner) with the build-script builder.

use std::path::{Path, PathBuf};

const PACKAGES: &[&str] = &[
    "google/api",
    "google/rpc",
    "google/type",
    "google/longrunning",
    "google/logging/type",
    "google/pubsub/v1",
    "google/spanner/v1",
];

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
    println!("cargo::rerun-if-env-changed=GOOGLEAPIS_DIR");
    let root = PathBuf::from(std::env::var_os("GOOGLEAPIS_DIR").expect("GOOGLEAPIS_DIR names the unpacked corpus (see run.sh)"));
    let mut files = Vec::new();
    for package in PACKAGES {
        protos_under(&root.join(package), &mut files);
    }
    files.sort();
    assert!(files.len() > 100, "the corpus slice went missing: {} files", files.len());
    rust_rpc_compiler::compile_protos(&files, &[root])
}
