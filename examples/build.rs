//! Generates the examples' Rust code from `proto/` into `OUT_DIR` at build time.

fn main() {
    let protos = [
        "proto/echo_service.proto",
        "proto/pi.proto",
        "proto/numbers.proto",
    ];
    for proto in protos {
        println!("cargo::rerun-if-changed={proto}");
    }
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    match rust_rpc_compiler::compile_protos_with(
        &protos,
        &["proto"],
        &rust_rpc_compiler::Config::default(),
    ) {
        Ok(output) => output.write_to(out_dir).expect("write generated code"),
        Err(e) => panic!("{}", e.render_plain()),
    }
}
