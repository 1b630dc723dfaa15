//! The checked-in `src/generated/` is what rust-rpc-compiler makes of the gRPC project's
//! test protos today. The protos come from `interop/fetch-protos.sh` (`.ci/test` runs it
//! first); `RUST_RPC_GRPC_PROTOS` points elsewhere. Regenerate with
//! `UPDATE_GENERATED=1 cargo test -p rust-rpc-interop --test generated`.

use std::path::PathBuf;

#[test]
fn generated_code_is_current() {
    let root = match std::env::var_os("RUST_RPC_GRPC_PROTOS") {
        Some(root) => PathBuf::from(root),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/grpc-proto/usr/share/grpc-proto")
        }
    };
    if !root.join("grpc/testing/test.proto").is_file() {
        // Without the protos there is nothing to compare with; CI always has them.
        eprintln!(
            "skipped: {} holds no grpc/testing/test.proto (run interop/fetch-protos.sh)",
            root.display()
        );
        return;
    }
    let files = [
        "grpc/testing/empty.proto",
        "grpc/testing/messages.proto",
        "grpc/testing/test.proto",
    ];
    let output = rust_rpc_compiler::compile_protos_with(
        &files,
        &[&root],
        &rust_rpc_compiler::Config::default(),
    )
    .expect("generate");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        output.write_to(&dir).expect("write");
        return;
    }
    for file in &output.files {
        let current = std::fs::read_to_string(dir.join(&file.name)).unwrap_or_default();
        assert!(
            current == file.content,
            "src/generated/{} is stale: regenerate with UPDATE_GENERATED=1",
            file.name
        );
    }
}
