//! Generates the examples' Rust code from `proto/` into `OUT_DIR` with the build-script helper.

fn main() -> Result<(), rust_rpc_compiler::Error> {
    rust_rpc_compiler::Builder::new()
        // Lets the examples use numbers as map keys or in sets.
        .type_attribute(".numbers.Number", "#[derive(Eq, Hash)]")
        .compile(
            &[
                "proto/echo_service.proto",
                "proto/pi.proto",
                "proto/numbers.proto",
                "proto/kv.proto",
            ],
            &["proto"],
        )
}
