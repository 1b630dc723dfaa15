//! Generates the benchmark schemas twice, with rust-rpc and with prost, from the same
//! descriptors. protobuf's own benchmark schemas and data sets are optional: they are read from
//! `RUST_RPC_BENCH_DATA`, else `$RUST_RPC_SHARED/bench` or `../shared/bench` beside the
//! checkout, else the protobuf 3.21 sources that `conformance/build-runner.sh` downloads into
//! `~/.cache/pb-conformance/src` (its `benchmarks/` folder). Without them only the message mix
//! is built.

use std::path::{Path, PathBuf};

/// The data set files, relative to the folder that holds them.
const GOOGLE: [&str; 3] = [
    "google_message1/proto2/benchmark_message1_proto2.proto",
    "google_message1/proto3/benchmark_message1_proto3.proto",
    "google_message2/benchmark_message2.proto",
];

/// Where `benchmarks.proto` is, and the folder holding the data sets: the same folder, or its
/// `datasets/` as in protobuf's source tree.
fn bench_data(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !dir.join("benchmarks.proto").exists() {
        return None;
    }
    [dir.to_path_buf(), dir.join("datasets")]
        .into_iter()
        .find(|sets| GOOGLE.iter().all(|f| sets.join(f).exists()))
        .map(|sets| (dir.to_path_buf(), sets))
}

fn candidates(manifest: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("RUST_RPC_BENCH_DATA") {
        dirs.push(PathBuf::from(dir));
    }
    let shared = std::env::var_os("RUST_RPC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../shared"));
    dirs.push(shared.join("bench"));
    if let Some(home) = std::env::var_os("HOME") {
        let sources = PathBuf::from(home).join(".cache/pb-conformance/src");
        if let Ok(entries) = std::fs::read_dir(&sources) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path().join("benchmarks")))
                .collect();
            found.sort();
            dirs.extend(found);
        }
    }
    dirs
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(google_bench_data)");
    println!("cargo::rerun-if-env-changed=RUST_RPC_BENCH_DATA");
    println!("cargo::rerun-if-env-changed=RUST_RPC_SHARED");
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let echo_dir = manifest.join("../examples/proto");
    let mut includes = vec![manifest.join("protos"), echo_dir.clone()];
    let mut files = vec![
        manifest.join("protos/mix.proto"),
        echo_dir.join("echo_service.proto"),
    ];
    println!(
        "cargo::rerun-if-changed={}",
        manifest.join("protos").display()
    );
    if let Some((root, sets)) = candidates(&manifest).iter().find_map(|d| bench_data(d)) {
        println!("cargo::rerun-if-changed={}", root.display());
        println!("cargo::rustc-cfg=google_bench_data");
        println!(
            "cargo::rustc-env=RUST_RPC_BENCH_DATA_DIR={}",
            sets.display()
        );
        files.push(root.join("benchmarks.proto"));
        files.extend(GOOGLE.iter().map(|f| sets.join(f)));
        // The data sets' folder first, so their names do not pick up a `datasets/` prefix.
        if sets != root {
            includes.push(sets);
        }
        includes.push(root);
    }

    let ours = out.join("ours");
    rust_rpc_compiler::compile_protos_with(
        &files,
        &includes,
        &rust_rpc_compiler::Config::default(),
    )
    .unwrap_or_else(|e| panic!("{}", e.render_plain()))
    .write_to(&ours)
    .expect("write rust-rpc output");

    // tonic's code for the echo service, for the RPC benchmark.
    let tonic_out = out.join("tonic");
    std::fs::create_dir_all(&tonic_out).expect("create tonic output dir");
    let echo_set = protox::compile([echo_dir.join("echo_service.proto")], [&echo_dir])
        .expect("echo proto parses");
    tonic_prost_build::configure()
        .out_dir(&tonic_out)
        .include_file("_include.rs")
        .compile_fds(echo_set)
        .expect("tonic-prost-build generates the echo service");

    let prost_out = out.join("prost");
    std::fs::create_dir_all(&prost_out).expect("create prost output dir");
    let set = protox::compile(&files, &includes).expect("benchmark protos parse");
    prost_build::Config::new()
        .out_dir(&prost_out)
        .include_file("_include.rs")
        .compile_fds(set)
        .expect("prost-build generates the benchmark schemas");
}
