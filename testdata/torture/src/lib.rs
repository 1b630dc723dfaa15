//! The torture set (`build.rs`): Rust's keywords, the prelude's names and the methods of
//! generated types' traits in every place a `.proto` name can go. That this crate compiles
//! under `clippy -D warnings` and its docs build is most of the test; `tests/` round-trips
//! the messages.

/// Generated through protox.
pub mod protox {
    include!(concat!(env!("OUT_DIR"), "/protox/_include.rs"));
}

/// Generated through protoc (`Builder::protoc`).
pub mod protoc {
    include!(concat!(env!("OUT_DIR"), "/protoc/_include.rs"));
}

/// The directory of the generated `.proto` files, for tests that hand them to other tools.
pub const PROTOS: &str = concat!(env!("OUT_DIR"), "/protos");

include!(concat!(env!("OUT_DIR"), "/counts.rs"));
