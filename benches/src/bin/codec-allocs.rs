//! Heap allocations per decode, rust-rpc beside prost, for every codec data set: a count that
//! repeats exactly. Two ways: a fresh message per decode (`decode`), and the C++
//! `Clear()`-and-reuse pattern (`clear()` then `merge` into a message that held the same
//! payload before), where the message's strings, vectors and maps keep their allocations.
//!
//! `cargo run --release -p rust-rpc-benches --bin codec-allocs`

use std::sync::atomic::Ordering;

use rust_rpc_benches::counting::{Counting, ALLOCATIONS, BYTES};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes asked for while `f` runs.
fn counted(f: impl FnOnce()) -> (u64, u64) {
    let (n, b) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    f();
    (
        ALLOCATIONS.load(Ordering::Relaxed) - n,
        BYTES.load(Ordering::Relaxed) - b,
    )
}

/// Per payload, on average: (allocations, bytes) for a fresh decode and for clear-and-merge.
fn measure<O: rust_rpc::Message + Default, P: prost::Message + Default>(
    payloads: &[Vec<u8>],
) -> [(f64, f64); 4] {
    let per = |(n, b): (u64, u64)| {
        (
            n as f64 / payloads.len() as f64,
            b as f64 / payloads.len() as f64,
        )
    };
    let ours_fresh = counted(|| {
        for p in payloads {
            drop(std::hint::black_box(O::decode(p).expect("decode")));
        }
    });
    let theirs_fresh = counted(|| {
        for p in payloads {
            drop(std::hint::black_box(
                P::decode(p.as_slice()).expect("decode"),
            ));
        }
    });
    let mut ours: Vec<O> = payloads
        .iter()
        .map(|p| O::decode(p).expect("decode"))
        .collect();
    let mut theirs: Vec<P> = payloads
        .iter()
        .map(|p| P::decode(p.as_slice()).expect("decode"))
        .collect();
    let ours_reused = counted(|| {
        for (m, p) in ours.iter_mut().zip(payloads) {
            m.clear();
            m.merge(p).expect("merge");
        }
    });
    let theirs_reused = counted(|| {
        for (m, p) in theirs.iter_mut().zip(payloads) {
            m.clear();
            m.merge(p.as_slice()).expect("merge");
        }
    });
    [ours_fresh, theirs_fresh, ours_reused, theirs_reused].map(per)
}

fn main() {
    use rust_rpc_benches::{ours, theirs};
    let mut rows: Vec<(&str, [(f64, f64); 4])> = vec![(
        "mix",
        measure::<ours::mix::Mix, theirs::mix::Mix>(&[rust_rpc_benches::mix_payload()]),
    )];
    #[cfg(google_bench_data)]
    for data in rust_rpc_benches::google_datasets() {
        let row = rust_rpc_benches::with_dataset_types!(
            data.message_name.as_str(),
            measure(&data.payloads)
        );
        rows.push((data.name, row));
    }
    println!(
        "| data set | decode | rust-rpc | prost | ours/prost | bytes, rust-rpc | bytes, prost |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, [of, tf, or, tr]) in rows {
        for (how, ours, theirs) in [("fresh", of, tf), ("clear + merge", or, tr)] {
            let ratio = if theirs.0 > 0.0 {
                format!("{:.2}", ours.0 / theirs.0)
            } else {
                "-".to_owned()
            };
            println!(
                "| {name} | {how} | {:.1} | {:.1} | {ratio} | {:.0} | {:.0} |",
                ours.0, theirs.0, ours.1, theirs.1
            );
        }
    }
}
