//! Generates the conformance messages with our own compiler from the `.proto` files that
//! `conformance/build-runner.sh` copies next to the runner. Without them the testee
//! still builds, and says where to get them when run.

use std::path::PathBuf;

fn protos_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RUST_RPC_CONFORMANCE_PROTOS") {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/pb-conformance/protos"))
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(conformance_protos)");
    println!("cargo::rerun-if-env-changed=RUST_RPC_CONFORMANCE_PROTOS");
    let Some(dir) = protos_dir() else { return };
    println!("cargo::rerun-if-changed={}", dir.display());
    let files = [
        dir.join("conformance.proto"),
        dir.join("google/protobuf/test_messages_proto2.proto"),
        dir.join("google/protobuf/test_messages_proto3.proto"),
    ];
    if !files.iter().all(|f| f.exists()) {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = rust_rpc_compiler::Config::default();
    match rust_rpc_compiler::compile_protos_with(&files, &[&dir], &config) {
        Ok(output) => {
            output
                .write_to(&out)
                .expect("write generated conformance code");
            println!("cargo::rustc-cfg=conformance_protos");
        }
        Err(e) => panic!("{}", e.render_plain()),
    }
}
