//! Generates prost code for the golden cases, so tests can compare our encodings against an
//! independent implementation. protox parses the files; no protoc is needed.

use std::path::PathBuf;

/// Cases prost compiles too; `no_package` has no module of its own and `keywords` uses names
/// prost escapes differently, so those two are left to the round-trip tests.
const PROST_CASES: &[&str] = &[
    "scalars",
    "proto3_optional",
    "repeated",
    "maps",
    "oneofs",
    "nested",
    "enums",
    "proto2",
    "recursive",
    "reserved",
    "deprecated",
    "wkt",
];

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let protos = manifest.join("protos");
    println!("cargo:rerun-if-changed={}", protos.display());
    let files: Vec<PathBuf> = PROST_CASES
        .iter()
        .map(|c| protos.join(format!("{c}.proto")))
        .collect();
    let set = protox::compile(&files, [&protos]).expect("golden protos parse");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("prost");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/prost");
    prost_build::Config::new()
        .out_dir(&out)
        .include_file("_prost.rs")
        .compile_fds(set)
        .expect("prost-build generates the golden cases");
}
