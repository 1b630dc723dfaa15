//! Our encoder against prost's, for the same schemas: for each value, prost must decode our
//! bytes and re-encode them to exactly the same bytes, and we must decode prost's bytes back
//! to an equal value. Where a `HashMap` holds several entries the byte order is unspecified,
//! so those values are compared after decoding instead.

use rust_rpc_testdata::ours;
use rust_rpc_testdata::prost_gen;

/// Our bytes, prost's re-encoding of them, and our decoding of prost's bytes must agree.
fn agree<O, P>(value: &O)
where
    O: rust_rpc::Message + rust_rpc::Name + Default + PartialEq,
    P: prost::Message + Default,
{
    let ours_bytes = rust_rpc::Message::encode_to_vec(value);
    let theirs = P::decode(ours_bytes.as_slice())
        .unwrap_or_else(|e| panic!("prost rejects our {}: {e}", O::FULL_NAME));
    let theirs_bytes = prost::Message::encode_to_vec(&theirs);
    assert_eq!(
        ours_bytes,
        theirs_bytes,
        "{}: bytes differ for {value:?}",
        O::FULL_NAME
    );
    let back = O::decode(&theirs_bytes)
        .unwrap_or_else(|e| panic!("we reject prost's {}: {e}", O::FULL_NAME));
    assert_eq!(&back, value, "{}", O::FULL_NAME);
}

/// Like [`agree`], for values whose encoding order is unspecified (several map entries).
fn agree_unordered<O, P>(value: &O)
where
    O: rust_rpc::Message + rust_rpc::Name + Default + PartialEq,
    P: prost::Message + Default + PartialEq + std::fmt::Debug,
{
    let ours_bytes = rust_rpc::Message::encode_to_vec(value);
    let theirs = P::decode(ours_bytes.as_slice()).expect("prost decodes our bytes");
    let theirs_bytes = prost::Message::encode_to_vec(&theirs);
    assert_eq!(
        ours_bytes.len(),
        theirs_bytes.len(),
        "{}: sizes differ",
        O::FULL_NAME
    );
    assert_eq!(
        P::decode(theirs_bytes.as_slice()).expect("prost round trip"),
        theirs
    );
    assert_eq!(
        &O::decode(&theirs_bytes).expect("we decode prost's bytes"),
        value
    );
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "héllo wörld",
    "\u{0}",
    "\u{10FFFF}\u{FEFF}",
    "\u{7f}\u{80}\u{7ff}\u{800}",
];

#[test]
fn scalars() {
    use ours::scalars::{Empty, Scalars};
    agree::<_, prost_gen::scalars::Scalars>(&Scalars::default());
    agree::<_, prost_gen::scalars::Empty>(&Empty::default());
    let ints = [
        0i64,
        1,
        -1,
        127,
        128,
        300,
        i32::MIN as i64,
        i32::MAX as i64,
        i64::MIN,
        i64::MAX,
    ];
    for (i, &n) in ints.iter().enumerate() {
        let s = STRINGS[i % STRINGS.len()];
        let msg = Scalars {
            f_double: [
                0.0,
                -1.5,
                f64::MAX,
                f64::MIN_POSITIVE,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ][i % 6],
            f_float: [0.0f32, 1.25, f32::MIN, f32::EPSILON, f32::NEG_INFINITY][i % 5],
            f_int32: n as i32,
            f_int64: n,
            f_uint32: n as u32,
            f_uint64: n as u64,
            f_sint32: n as i32,
            f_sint64: n,
            f_fixed32: n as u32,
            f_fixed64: n as u64,
            f_sfixed32: n as i32,
            f_sfixed64: n,
            f_bool: i % 2 == 1,
            f_string: s.to_owned(),
            f_bytes: s.as_bytes().iter().rev().copied().collect(),
            high_number: n as i32,
            ..Default::default()
        };
        agree::<_, prost_gen::scalars::Scalars>(&msg);
    }
    // NaN is not equal to itself, so only the bytes are compared.
    let nan = Scalars {
        f_double: f64::NAN,
        ..Default::default()
    };
    let theirs = <prost_gen::scalars::Scalars as prost::Message>::decode(
        rust_rpc::Message::encode_to_vec(&nan).as_slice(),
    )
    .unwrap();
    assert!(theirs.f_double.is_nan());
}

#[test]
fn proto3_optional() {
    use ours::proto3_optional::{Inner, Mood, Optionals};
    agree::<_, prost_gen::proto3_optional::Optionals>(&Optionals::default());
    agree::<_, prost_gen::proto3_optional::Optionals>(&Optionals {
        count: Some(0),
        label: Some(String::new()),
        blob: Some(vec![]),
        mood: Some(Mood::UNSPECIFIED),
        ratio: Some(0.0),
        flag: Some(false),
        inner: Some(Inner::default()),
        plain: 0,
        ..Default::default()
    });
    agree::<_, prost_gen::proto3_optional::Optionals>(&Optionals {
        count: Some(-7),
        label: Some("label".into()),
        blob: Some(vec![0xff; 300]),
        mood: Some(Mood::HAPPY),
        ratio: Some(-2.5),
        flag: Some(true),
        inner: Some(Inner {
            value: i32::MIN,
            ..Default::default()
        }),
        plain: 9,
        ..Default::default()
    });
}

#[test]
fn repeated() {
    use ours::repeated::{Level, Point, Repeated};
    agree::<_, prost_gen::repeated::Repeated>(&Repeated::default());
    agree::<_, prost_gen::repeated::Repeated>(&Repeated {
        ints: vec![0, -1, 1, i32::MIN, i32::MAX, 150],
        zigzags: vec![0, -1, 1, i64::MIN, i64::MAX],
        fixeds: vec![0, u32::MAX],
        doubles: vec![0.0, 1.0, -1.0, f64::MAX],
        flags: vec![true, false, true],
        levels: vec![Level::LOW, Level::HIGH, Level::from(-3), Level::from(1000)],
        unpacked_ints: vec![0, -5, 1 << 20],
        names: STRINGS.iter().map(|s| s.to_string()).collect(),
        blobs: vec![vec![], vec![0], vec![1; 200]],
        points: vec![
            Point::default(),
            Point {
                x: i32::MIN,
                y: i32::MAX,
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    // A long packed run needs a multi-byte length prefix.
    agree::<_, prost_gen::repeated::Repeated>(&Repeated {
        ints: (0..1000).collect(),
        ..Default::default()
    });
}

#[test]
fn maps() {
    use ours::maps::{Color, Maps, Value};
    agree::<_, prost_gen::maps::Maps>(&Maps::default());
    // One entry per map: the bytes are fully determined.
    let cases: Vec<Maps> = vec![
        {
            let mut m = Maps::default();
            m.labels.insert(String::new(), String::new());
            m.blobs.insert(0, vec![]);
            m.colors.insert(0, Color::UNSPECIFIED);
            m.values.insert(String::new(), Value::default());
            m.scores.insert(0, 0.0);
            m.flags.insert(false, 0);
            m
        },
        {
            let mut m = Maps::default();
            m.labels.insert("key".into(), "value".into());
            m.blobs.insert(i32::MIN, vec![1, 2, 3]);
            m.colors.insert(u64::MAX, Color::from(-9));
            m.values.insert(
                "v".into(),
                Value {
                    text: "t".into(),
                    ..Default::default()
                },
            );
            m.scores.insert(-1, f64::NEG_INFINITY);
            m.flags.insert(true, u64::MAX);
            m
        },
    ];
    for m in &cases {
        agree::<_, prost_gen::maps::Maps>(m);
    }
    let mut many = Maps::default();
    for i in 0..50 {
        many.labels.insert(format!("k{i}"), format!("v{i}"));
        many.colors.insert(i, Color::RED);
        many.scores.insert(-(i as i32), i as f64);
    }
    agree_unordered::<_, prost_gen::maps::Maps>(&many);
}

#[test]
fn oneofs() {
    use ours::oneofs::{choice, Choice, Leaf};
    let values = [
        None,
        Some(choice::Value::Text(String::new())),
        Some(choice::Value::Text("text".into())),
        Some(choice::Value::Number(0)),
        Some(choice::Value::Number(i64::MIN)),
        Some(choice::Value::Raw(vec![])),
        Some(choice::Value::Raw(vec![0, 1, 2])),
        Some(choice::Value::Leaf(Leaf::default())),
        Some(choice::Value::Leaf(Leaf {
            name: "leaf".into(),
            ..Default::default()
        })),
        Some(choice::Value::KindValue(choice::Kind::UNSPECIFIED)),
        Some(choice::Value::KindValue(choice::Kind::A)),
    ];
    let kinds = [
        None,
        Some(choice::KindOneof::On(false)),
        Some(choice::KindOneof::On(true)),
        Some(choice::KindOneof::Amount(-0.5)),
    ];
    for (i, value) in values.iter().enumerate() {
        agree::<_, prost_gen::oneofs::Choice>(&Choice {
            value: value.clone(),
            kind: kinds[i % kinds.len()].clone(),
            after: i as i32,
            ..Default::default()
        });
    }
}

#[test]
fn nested() {
    use ours::nested::{outer, Outer, Reader};
    let inner = outer::middle::Inner {
        depth: outer::middle::inner::Depth::DEEP,
        shade: outer::Shade::DARK,
        ..Default::default()
    };
    agree::<_, prost_gen::nested::Outer>(&Outer {
        middle: Some(outer::Middle {
            inner: Some(inner.clone()),
            inners: vec![inner.clone(), outer::middle::Inner::default()],
            ..Default::default()
        }),
        shortcut: Some(inner.clone()),
        shade: outer::Shade::DARK,
        ..Default::default()
    });
    agree::<_, prost_gen::nested::Reader>(&Reader {
        inner: Some(inner),
        depth: outer::middle::inner::Depth::DEEP,
        ..Default::default()
    });
}

#[test]
fn enums() {
    use ours::enums::{Holder, Keyword, Plain, Status};
    for status in [
        Status::UNKNOWN,
        Status::OK,
        Status::FAILED,
        Status::from(i32::MIN),
    ] {
        agree::<_, prost_gen::enums::Holder>(&Holder {
            status,
            keyword: Keyword::TYPE,
            plains: vec![Plain::ZERO, Plain::ONE, Plain::TWO, Plain::from(-1)],
            ..Default::default()
        });
    }
}

#[test]
fn proto2() {
    use ours::proto2::{defaults, Defaults, Priority};
    // prost writes required fields whether set or not (it has no presence for them), so
    // the values compared here set them all.
    let required = Defaults {
        id: Some(0),
        name: Some("unnamed".into()),
        required_priority: Some(Priority::HIGH),
        ..Default::default()
    };
    agree::<_, prost_gen::proto2::Defaults>(&required);
    agree::<_, prost_gen::proto2::Defaults>(&Defaults {
        id: Some(-1),
        name: Some(String::new()),
        retries: Some(0),
        offset: Some(i64::MIN),
        big: Some(0),
        ratio: Some(f32::MAX),
        limit: Some(-0.0),
        nothing: Some(1.0),
        enabled: Some(false),
        greeting: Some(String::new()),
        magic: Some(vec![]),
        priority: Some(Priority::HIGH),
        first_by_default: Some(Priority::LOW),
        no_default: Some("x".into()),
        required_priority: Some(Priority::LOW),
        unpacked: vec![1, -1],
        packed: vec![0, i32::MAX],
        settings: Some(defaults::Settings {
            level: Some(0),
            mode: Some("m".into()),
            ..Default::default()
        }),
        entry: vec![
            defaults::Entry {
                key: Some("a".into()),
                value: Some(1),
                ..Default::default()
            },
            defaults::Entry {
                key: Some(String::new()),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
}

#[test]
fn recursive() {
    use ours::recursive::{expr, Expr, Leaf, Ping, Pong, Sum, Tree};
    let mut tree = Tree {
        value: 1,
        ..Default::default()
    };
    for i in 0..20 {
        tree = Tree {
            value: i,
            left: Some(Box::new(tree.clone())),
            right: if i % 3 == 0 {
                Some(Box::new(Tree::default()))
            } else {
                None
            },
            children: vec![Tree {
                value: -i,
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    tree.named.insert(
        "only".into(),
        Tree {
            value: 5,
            ..Default::default()
        },
    );
    agree::<_, prost_gen::recursive::Tree>(&tree);
    agree::<_, prost_gen::recursive::Ping>(&Ping {
        pong: Some(Box::new(Pong {
            ping: Some(Box::new(Ping::default())),
            ..Default::default()
        })),
        leaf: Some(Leaf {
            name: "leaf".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let expr = Expr {
        node: Some(expr::Node::Sum(Sum {
            terms: vec![
                Expr {
                    node: Some(expr::Node::Literal(-4)),
                    ..Default::default()
                },
                Expr {
                    node: Some(expr::Node::Negate(Box::default())),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })),
        ..Default::default()
    };
    agree::<_, prost_gen::recursive::Expr>(&expr);
}

#[test]
fn wkt() {
    use ours::wkt::Event;
    use rust_rpc::wkt;
    let mut attributes = wkt::Struct::default();
    attributes.fields.insert(
        "n".into(),
        wkt::Value {
            kind: Some(wkt::value::Kind::NumberValue(1.5)),
            ..Default::default()
        },
    );
    agree::<_, prost_gen::wkt::Event>(&Event {
        at: Some(wkt::Timestamp {
            seconds: -62_135_596_800,
            nanos: 999_999_999,
            ..Default::default()
        }),
        took: Some(wkt::Duration {
            seconds: 1,
            nanos: -1,
            ..Default::default()
        }),
        detail: Some(wkt::Any {
            type_url: "type.googleapis.com/x.Y".into(),
            value: vec![8, 1],
            ..Default::default()
        }),
        nothing: Some(wkt::Empty::default()),
        mask: Some(wkt::FieldMask {
            paths: vec!["a.b".into(), "c".into()],
            ..Default::default()
        }),
        attributes: Some(attributes),
        value: Some(wkt::Value {
            kind: Some(wkt::value::Kind::NullValue(wkt::NullValue::NULL_VALUE)),
            ..Default::default()
        }),
        list: Some(wkt::ListValue {
            values: vec![wkt::Value {
                kind: Some(wkt::value::Kind::StringValue("s".into())),
                ..Default::default()
            }],
            ..Default::default()
        }),
        maybe_int: Some(wkt::Int32Value {
            value: -1,
            ..Default::default()
        }),
        maybe_text: Some(wkt::StringValue::default()),
        null: wkt::NullValue::NULL_VALUE,
        ..Default::default()
    });
}

/// The other direction: values built with prost, decoded by us, re-encoded to the same bytes.
#[test]
fn prost_built_values_decode_and_reencode_identically() {
    let theirs = prost_gen::scalars::Scalars {
        f_int32: -5,
        f_sint64: -300,
        f_string: "prost".into(),
        f_bytes: vec![9; 129],
        f_double: 2.5,
        ..Default::default()
    };
    let bytes = prost::Message::encode_to_vec(&theirs);
    let ours = <ours::scalars::Scalars as rust_rpc::Message>::decode(&bytes).unwrap();
    assert_eq!(ours.f_sint64, -300);
    assert_eq!(rust_rpc::Message::encode_to_vec(&ours), bytes);

    let mut map_theirs = prost_gen::maps::Maps::default();
    map_theirs
        .values
        .insert("k".into(), prost_gen::maps::Value { text: "v".into() });
    let bytes = prost::Message::encode_to_vec(&map_theirs);
    let map_ours = <ours::maps::Maps as rust_rpc::Message>::decode(&bytes).unwrap();
    assert_eq!(map_ours.values["k"].text, "v");
    assert_eq!(rust_rpc::Message::encode_to_vec(&map_ours), bytes);
}
