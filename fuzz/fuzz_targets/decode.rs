//! Arbitrary bytes decoded as messages of every shape the generator produces: a decode
//! returns a value or a `DecodeError`, never panics or runs away with memory, and what it
//! returns re-encodes to bytes that decode again to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_rpc::{Message, Name};
use rust_rpc_testdata::ours;

fn check<M: Message + Name + Default + PartialEq>(data: &[u8]) {
    if let Ok(msg) = M::decode(data) {
        let bytes = msg.encode_to_vec();
        assert_eq!(bytes.len(), msg.encoded_len(), "{}", M::FULL_NAME);
        let again = M::decode(&bytes)
            .unwrap_or_else(|e| panic!("{}: re-encoded bytes fail: {e}", M::FULL_NAME));
        if again != msg {
            // NaN is not equal to itself, and HashMap entries may come out in another order:
            // then the bytes must still be the same multiset.
            let mut first = bytes.clone();
            let mut second = again.encode_to_vec();
            first.sort_unstable();
            second.sort_unstable();
            assert_eq!(first, second, "{}: {msg:?} became {again:?}", M::FULL_NAME);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ours::scalars::Scalars>(data);
    check::<ours::repeated::Repeated>(data);
    check::<ours::maps::Maps>(data);
    check::<ours::oneofs::Choice>(data);
    check::<ours::proto2::Defaults>(data);
    check::<ours::lenient::leniency::closed::Closed>(data);
    check::<ours::lenient::leniency::open::Typed>(data);
    check::<ours::recursive::Tree>(data);
    check::<ours::recursive::Expr>(data);
    check::<ours::wkt::Event>(data);
    check::<rust_rpc::wkt::Struct>(data);
    check::<rust_rpc::tcp::wire::RequestHeaders>(data);
    check::<rust_rpc::tcp::wire::CallStatus>(data);
});
