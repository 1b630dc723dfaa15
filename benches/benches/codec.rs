//! Encode, decode and encoded_len of rust-rpc's generated code against prost's, for the same
//! schemas and inputs, in one run. `benches/ratios.py` turns the results into ratios.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn pair<O, P>(c: &mut Criterion, name: &str, payloads: &[Vec<u8>])
where
    O: rust_rpc::Message + Default,
    P: prost::Message + Default,
{
    let ours: Vec<O> = payloads
        .iter()
        .map(|p| O::decode(p).expect("rust-rpc decodes the data set"))
        .collect();
    let theirs: Vec<P> = payloads
        .iter()
        .map(|p| P::decode(p.as_slice()).expect("prost decodes the data set"))
        .collect();
    for (o, t) in ours.iter().zip(&theirs) {
        // Same input, same amount of output: both sides do the same work.
        assert_eq!(
            o.encoded_len(),
            t.encoded_len(),
            "{name}: encoded sizes differ"
        );
    }
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes as u64));

    group.bench_function(BenchmarkId::new("decode", "rust-rpc"), |b| {
        b.iter(|| {
            for p in payloads {
                black_box(O::decode(black_box(p)).expect("decode"));
            }
        })
    });
    group.bench_function(BenchmarkId::new("decode", "prost"), |b| {
        b.iter(|| {
            for p in payloads {
                black_box(P::decode(black_box(p.as_slice())).expect("decode"));
            }
        })
    });
    group.bench_function(BenchmarkId::new("encode", "rust-rpc"), |b| {
        b.iter(|| {
            for m in &ours {
                black_box(black_box(m).encode_to_vec());
            }
        })
    });
    group.bench_function(BenchmarkId::new("encode", "prost"), |b| {
        b.iter(|| {
            for m in &theirs {
                black_box(black_box(m).encode_to_vec());
            }
        })
    });
    group.bench_function(BenchmarkId::new("encoded_len", "rust-rpc"), |b| {
        b.iter(|| {
            for m in &ours {
                black_box(black_box(m).encoded_len());
            }
        })
    });
    group.bench_function(BenchmarkId::new("encoded_len", "prost"), |b| {
        b.iter(|| {
            for m in &theirs {
                black_box(black_box(m).encoded_len());
            }
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    use rust_rpc_benches::{ours, theirs};
    pair::<ours::mix::Mix, theirs::mix::Mix>(c, "mix", &[rust_rpc_benches::mix_payload()]);
    #[cfg(google_bench_data)]
    for set in rust_rpc_benches::google_datasets() {
        rust_rpc_benches::with_dataset_types!(
            set.message_name.as_str(),
            pair(c, set.name, &set.payloads)
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(40);
    targets = codec
}
criterion_main!(benches);
