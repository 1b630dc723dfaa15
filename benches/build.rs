//! Generates the benchmark schemas twice, with rust-rpc and with prost, from the same
//! descriptors. The Google benchmark schemas and data sets come from `../shared/bench`
//! (`RUST_RPC_BENCH_DATA` overrides); without them only the message mix is built.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(google_bench_data)");
    println!("cargo::rerun-if-env-changed=RUST_RPC_BENCH_DATA");
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let data = std::env::var_os("RUST_RPC_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../shared/bench"));

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
    let google = [
        "benchmarks.proto",
        "google_message1/proto2/benchmark_message1_proto2.proto",
        "google_message1/proto3/benchmark_message1_proto3.proto",
        "google_message2/benchmark_message2.proto",
    ];
    if google.iter().all(|f| data.join(f).exists()) {
        println!("cargo::rerun-if-changed={}", data.display());
        println!("cargo::rustc-cfg=google_bench_data");
        println!(
            "cargo::rustc-env=RUST_RPC_BENCH_DATA_DIR={}",
            data.display()
        );
        includes.push(data.clone());
        files.extend(google.iter().map(|f| data.join(f)));
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
