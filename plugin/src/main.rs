fn main() {
    eprintln!(
        "protoc-gen-rust-rpc: the protoc plugin is not built yet; use the rust-rpc-compiler CLI"
    );
    std::process::exit(2);
}
