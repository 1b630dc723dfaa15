//! Arbitrary bytes as the DATA of a gRPC stream, fed to the message deframer in pieces the
//! fuzzer chooses: it never panics, never yields a message over its limit, and gives the same
//! messages (or the same error) however the bytes are split across DATA frames.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the sizes of the DATA frames; the rest is the stream.
    let (splits, stream) = data.split_at(data.len().min(8));
    let splits: Vec<usize> = splits.iter().map(|&b| usize::from(b)).collect();
    let whole = rust_rpc::grpc::check_deframer(stream, &[], 64);
    let pieces = rust_rpc::grpc::check_deframer(stream, &splits, 64);
    assert_eq!(whole, pieces);
    if let Ok(messages) = whole {
        assert!(messages.iter().all(|m| m.len() <= 64));
    }
});
