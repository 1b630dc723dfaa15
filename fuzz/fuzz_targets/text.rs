//! Arbitrary text parsed as protobuf's text format into messages of every field kind, the
//! well-known types, `Any` in expanded form and proto2 extensions and groups: a parse returns a
//! message or an error, never panics or runs away with memory or stack, and what it returns
//! prints as text that parses to the same message.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rust_rpc::text::{self, TextMessage, TextOptions, TypeRegistry};
use rust_rpc_testdata::ours::{json2, json3};

fn options() -> TextOptions {
    static REGISTRY: OnceLock<Arc<TypeRegistry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        let mut r = TypeRegistry::new();
        r.register::<json3::Leaf>()
            .register::<json3::Everything>()
            .register_extension(&json2::TAG)
            .register_extension(&json2::MARKS);
        Arc::new(r)
    });
    TextOptions::new().registry(registry.clone())
}

fn check<M: TextMessage>(input: &str) {
    let options = options();
    let Ok(msg) = text::from_str_with::<M>(input, &options) else {
        return;
    };
    let printed = text::to_string_with(&msg, &options);
    let again: M = text::from_str_with(&printed, &options)
        .unwrap_or_else(|e| panic!("{}: {printed} does not read back: {e}", M::FULL_NAME));
    // NaN is not equal to itself and map entries come out in any order: compare the bytes as
    // multisets.
    let mut first = msg.encode_to_vec();
    let mut second = again.encode_to_vec();
    first.sort_unstable();
    second.sort_unstable();
    assert_eq!(first, second, "{}: {input:?} became {printed:?}", M::FULL_NAME);
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check::<json3::Everything>(input);
    check::<json2::Record>(input);
    check::<rust_rpc::wkt::Any>(input);
});
