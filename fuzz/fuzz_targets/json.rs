//! Arbitrary text parsed as protobuf JSON into messages of every field kind, the well-known
//! types and proto2 extensions: a parse returns a message or an error, never panics or runs
//! away with memory or stack, and what it returns writes as JSON that parses to the same
//! message.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rust_rpc::json::{self, JsonOptions, TypeRegistry};
use rust_rpc::{Message, Name};
use rust_rpc_testdata::ours::{json2, json3};

fn options(ignore_unknown: bool) -> JsonOptions {
    static REGISTRY: OnceLock<Arc<TypeRegistry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        let mut r = TypeRegistry::new();
        r.register::<json3::Leaf>()
            .register::<json3::Everything>()
            .register_extension(&json2::TAG)
            .register_extension(&json2::MARKS);
        Arc::new(r)
    });
    JsonOptions::new()
        .registry(registry.clone())
        .ignore_unknown_fields(ignore_unknown)
}

fn check<M>(text: &str, ignore_unknown: bool)
where
    M: Message + Name + Default + serde::Serialize + serde::de::DeserializeOwned,
{
    let options = options(ignore_unknown);
    let Ok(msg) = json::from_str_with::<M>(text, &options) else {
        return;
    };
    let written = json::to_string_with(&msg, &options)
        .unwrap_or_else(|e| panic!("{}: what was read does not write: {e}", M::FULL_NAME));
    let again: M = json::from_str_with(&written, &options)
        .unwrap_or_else(|e| panic!("{}: {written} does not read back: {e}", M::FULL_NAME));
    // NaN is not equal to itself and map entries come out in any order: compare the bytes as
    // multisets.
    let mut first = msg.encode_to_vec();
    let mut second = again.encode_to_vec();
    first.sort_unstable();
    second.sort_unstable();
    assert_eq!(first, second, "{}: {text} became {written}", M::FULL_NAME);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check::<json3::Everything>(text, false);
    check::<json3::Everything>(text, true);
    check::<json2::Record>(text, false);
    check::<rust_rpc::wkt::Value>(text, false);
    check::<rust_rpc::wkt::Any>(text, false);
});
