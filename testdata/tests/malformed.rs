//! Mutated encodings must decode to a value or a `DecodeError`, never a panic; what decodes
//! must re-encode to bytes that decode again to a message of the same size. The mutations are
//! seeded, so a failure reproduces; `MUTATION_ROUNDS` raises the count for a longer run.

use rust_rpc::{Message, Name};
use rust_rpc_testdata::ours;

/// xorshift64*: small, seeded, good enough to pick bytes and positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(at),
            2 => {
                let junk: Vec<u8> = (0..rng.below(12)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, junk);
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0x00, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x0f][rng.below(7)];
            }
            4 => {
                // A huge length prefix: must be refused before anything is allocated for it.
                out.splice(at..at, [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
            _ => {
                let end = (at + rng.below(16)).min(out.len());
                let span = out[at..end].to_vec();
                out.splice(at..at, span);
            }
        }
    }
    out
}

/// What survives a round trip: the decoded value, compared with `==`; where `==` cannot hold
/// (a NaN is not equal to itself), the bytes, compared as a multiset (entries of a `HashMap`
/// may come out in another order, and nothing else may change).
fn check<M: Message + Name + Default + PartialEq>(bytes: &[u8]) {
    if let Ok(msg) = M::decode(bytes) {
        let again = msg.encode_to_vec();
        assert_eq!(again.len(), msg.encoded_len(), "{}", M::FULL_NAME);
        let back = M::decode(&again)
            .unwrap_or_else(|e| panic!("{}: re-encoded bytes fail: {e}", M::FULL_NAME));
        if back != msg {
            let mut first = again.clone();
            let mut second = back.encode_to_vec();
            first.sort_unstable();
            second.sort_unstable();
            assert_eq!(first, second, "{}: {msg:?} became {back:?}", M::FULL_NAME);
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    use ours::{maps, oneofs, proto2, recursive, repeated, scalars};
    let mut m = maps::Maps::default();
    m.labels.insert("k".into(), "v".into());
    m.values.insert(
        "x".into(),
        maps::Value {
            text: "t".into(),
            ..Default::default()
        },
    );
    let tree = recursive::Tree {
        value: 3,
        left: Some(Box::new(recursive::Tree {
            value: 4,
            ..Default::default()
        })),
        children: vec![recursive::Tree::default()],
        ..Default::default()
    };
    vec![
        scalars::Scalars {
            f_int64: -9,
            f_string: "str".into(),
            f_bytes: vec![1, 2],
            f_double: 1.5,
            high_number: 7,
            ..Default::default()
        }
        .encode_to_vec(),
        repeated::Repeated {
            ints: vec![1, 300, -1],
            names: vec!["a".into()],
            points: vec![repeated::Point {
                x: 1,
                y: 2,
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec(),
        m.encode_to_vec(),
        oneofs::Choice {
            value: Some(oneofs::choice::Value::Leaf(oneofs::Leaf {
                name: "l".into(),
                ..Default::default()
            })),
            after: 2,
            ..Default::default()
        }
        .encode_to_vec(),
        proto2::Defaults {
            settings: Some(proto2::defaults::Settings {
                level: Some(1),
                ..Default::default()
            }),
            entry: vec![proto2::defaults::Entry {
                key: Some("e".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec(),
        tree.encode_to_vec(),
    ]
}

#[test]
fn mutated_inputs_never_panic() {
    let rounds: usize = std::env::var("MUTATION_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..rounds {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        check::<ours::scalars::Scalars>(&input);
        check::<ours::repeated::Repeated>(&input);
        check::<ours::maps::Maps>(&input);
        check::<ours::oneofs::Choice>(&input);
        check::<ours::proto2::Defaults>(&input);
        check::<ours::recursive::Tree>(&input);
        check::<ours::recursive::Expr>(&input);
        check::<ours::wkt::Event>(&input);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let input: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        check::<ours::scalars::Scalars>(&input);
        check::<ours::proto2::Defaults>(&input);
        check::<ours::recursive::Expr>(&input);
    }
}
