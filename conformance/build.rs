//! Generates the conformance messages with our own compiler from the `.proto` files that the
//! runner's build script copies next to the runner: protobuf 3.21's (`build-runner.sh`: proto2
//! and proto3 test messages) or 27.1's (`build-runner-27.sh`: also the editions test messages,
//! read by the vendored protoc since protox cannot parse editions). Without them the testee
//! still builds, and says where to get them when run.

use std::path::{Path, PathBuf};

/// `RUST_RPC_CONFORMANCE_PROTOS`, else the newer runner's files where they are, else the
/// older's.
fn protos_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RUST_RPC_CONFORMANCE_PROTOS") {
        return Some(PathBuf::from(dir));
    }
    let cache = PathBuf::from(std::env::var_os("HOME")?).join(".cache");
    let newer = cache.join("pb-conformance-27/protos");
    if newer.is_dir() {
        return Some(newer);
    }
    Some(cache.join("pb-conformance/protos"))
}

/// The files to generate, and whether they include the editions messages.
fn layout(dir: &Path) -> Option<(Vec<PathBuf>, bool)> {
    let proto2 = dir.join("google/protobuf/test_messages_proto2.proto");
    let proto3 = dir.join("google/protobuf/test_messages_proto3.proto");
    let newer = [
        dir.join("conformance/conformance.proto"),
        proto2.clone(),
        proto3.clone(),
        dir.join("editions/golden/test_messages_proto2_editions.proto"),
        dir.join("editions/golden/test_messages_proto3_editions.proto"),
        dir.join("conformance/test_protos/test_messages_edition2023.proto"),
    ];
    if newer.iter().all(|f| f.exists()) {
        return Some((newer.to_vec(), true));
    }
    let older = [dir.join("conformance.proto"), proto2, proto3];
    older
        .iter()
        .all(|f| f.exists())
        .then(|| (older.to_vec(), false))
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(conformance_protos)");
    println!("cargo::rustc-check-cfg=cfg(conformance_editions)");
    println!("cargo::rerun-if-env-changed=RUST_RPC_CONFORMANCE_PROTOS");
    let Some(dir) = protos_dir() else { return };
    println!("cargo::rerun-if-changed={}", dir.display());
    let Some((files, editions)) = layout(&dir) else {
        return;
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut config = rust_rpc_compiler::Config::default();
    config.json = true;
    config.text = true;
    if editions {
        config.protoc = Some(protoc_bin_vendored::protoc_bin_path().expect("vendored protoc"));
    }
    match rust_rpc_compiler::compile_protos_with(&files, &[&dir], &config) {
        Ok(output) => {
            output
                .write_to(&out)
                .expect("write generated conformance code");
            println!("cargo::rustc-cfg=conformance_protos");
            if editions {
                println!("cargo::rustc-cfg=conformance_editions");
            }
        }
        Err(e) => panic!("{}", e.render_plain()),
    }
}
