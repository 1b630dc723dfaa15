//! prost's code for the golden schemas, for the differential tests. Our own generated code
//! is compiled by the tests themselves (`tests/common/ours.rs`), so the golden test can run
//! before any golden exists.

/// prost's code for the same schemas.
#[allow(missing_docs, clippy::all)]
pub mod prost_gen {
    include!(concat!(env!("OUT_DIR"), "/prost/_prost.rs"));
}
