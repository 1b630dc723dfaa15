//! Arbitrary bytes as a TCP connection's frames, fed to the frame decoder in pieces the fuzzer
//! chooses: it never panics, never holds a payload over its limit, and gives the same frames
//! however the bytes are split across reads.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the read sizes; the rest is the stream.
    let (splits, stream) = data.split_at(data.len().min(8));
    rust_rpc::tcp::check_frames(stream, splits, 64);
});
