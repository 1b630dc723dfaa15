//! Runs one codec operation in a loop, for `valgrind --tool=callgrind`, whose instruction
//! counts repeat exactly where timings do not.
//!
//! ```text
//! codec-profile <mix|google_message1_proto2|google_message1_proto3|google_message2|struct-N>
//!               <decode|encode|encoded_len> <rust-rpc|prost> [iterations]
//!
//! `struct-N` is a `google.protobuf.Struct` nested N levels deep through its map (33 is as
//! deep as a decoder with the usual limit of 100 takes): encoding work must grow linearly in
//! N.
//! ```

use std::hint::black_box;

fn run<O: rust_rpc::Message + Default, P: prost::Message + Default>(
    payloads: &[Vec<u8>],
    op: &str,
    side: &str,
    n: usize,
) {
    let ours: Vec<O> = payloads
        .iter()
        .map(|p| O::decode(p).expect("decode"))
        .collect();
    let theirs: Vec<P> = payloads
        .iter()
        .map(|p| P::decode(p.as_slice()).expect("decode"))
        .collect();
    for _ in 0..n {
        match (op, side) {
            ("decode", "rust-rpc") => payloads
                .iter()
                .for_each(|p| drop(black_box(O::decode(black_box(p))))),
            ("decode", "prost") => payloads
                .iter()
                .for_each(|p| drop(black_box(P::decode(black_box(p.as_slice()))))),
            ("encode", "rust-rpc") => ours
                .iter()
                .for_each(|m| drop(black_box(black_box(m).encode_to_vec()))),
            ("encode", "prost") => theirs
                .iter()
                .for_each(|m| drop(black_box(black_box(m).encode_to_vec()))),
            ("encoded_len", "rust-rpc") => ours.iter().for_each(|m| {
                black_box(black_box(m).encoded_len());
            }),
            ("encoded_len", "prost") => theirs.iter().for_each(|m| {
                black_box(black_box(m).encoded_len());
            }),
            _ => panic!("unknown operation {op} or side {side}"),
        }
    }
}

fn main() {
    use rust_rpc_benches::{ours, theirs};
    let args: Vec<String> = std::env::args().collect();
    let [_, set, op, side, rest @ ..] = args.as_slice() else {
        eprintln!("usage: codec-profile <data set> <decode|encode|encoded_len> <rust-rpc|prost> [iterations]");
        std::process::exit(2);
    };
    let n = rest.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    if let Some(levels) = set.strip_prefix("struct-").and_then(|n| n.parse().ok()) {
        return run::<rust_rpc::wkt::Struct, prost_types::Struct>(
            &[rust_rpc_benches::nested_struct(levels)],
            op,
            side,
            n,
        );
    }
    if set == "mix" {
        return run::<ours::mix::Mix, theirs::mix::Mix>(
            &[rust_rpc_benches::mix_payload()],
            op,
            side,
            n,
        );
    }
    #[cfg(google_bench_data)]
    for data in rust_rpc_benches::google_datasets() {
        if data.name != set {
            continue;
        }
        rust_rpc_benches::with_dataset_types!(
            data.message_name.as_str(),
            run(&data.payloads, op, side, n)
        );
        return;
    }
    eprintln!("unknown data set {set}");
    std::process::exit(2);
}
