//! Generated messages encode and decode back to equal values, keep unknown fields, honour
//! proto2 defaults, and reject malformed input with offsets.

use rust_rpc::{DecodeErrorKind, Enumeration, Message, Name};
use rust_rpc_testdata::ours;

fn round_trip<M: Message + Name + Default + PartialEq + Clone>(msg: &M) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    assert_eq!(
        bytes.len(),
        msg.encoded_len(),
        "encoded_len disagrees with encode"
    );
    let back = M::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", M::FULL_NAME));
    assert_eq!(&back, msg, "{} did not survive a round trip", M::FULL_NAME);
    bytes
}

#[test]
fn scalars_at_their_extremes() {
    use ours::scalars::Scalars;
    let values = [
        Scalars::default(),
        Scalars {
            f_double: f64::MAX,
            f_float: f32::MIN_POSITIVE,
            f_int32: i32::MIN,
            f_int64: i64::MIN,
            f_uint32: u32::MAX,
            f_uint64: u64::MAX,
            f_sint32: i32::MIN,
            f_sint64: i64::MAX,
            f_fixed32: u32::MAX,
            f_fixed64: u64::MAX,
            f_sfixed32: -1,
            f_sfixed64: i64::MIN,
            f_bool: true,
            f_string: "héllo\u{0}\u{10FFFF}".to_owned(),
            f_bytes: vec![0, 0xff, 0x80],
            high_number: -1,
            ..Default::default()
        },
    ];
    for v in &values {
        round_trip(v);
    }
    assert!(
        Scalars::default().encode_to_vec().is_empty(),
        "proto3 defaults are not encoded"
    );
}

#[test]
fn negative_zero_is_encoded_and_nan_survives() {
    use ours::scalars::Scalars;
    let msg = Scalars {
        f_double: -0.0,
        ..Default::default()
    };
    let bytes = msg.encode_to_vec();
    assert_eq!(bytes.len(), 9, "-0.0 has a bit set, so it is sent");
    let back = Scalars::decode(&bytes).unwrap();
    assert!(back.f_double.is_sign_negative());

    let nan = Scalars {
        f_float: f32::NAN,
        ..Default::default()
    };
    let back = Scalars::decode(&nan.encode_to_vec()).unwrap();
    assert!(back.f_float.is_nan());
}

#[test]
fn unknown_fields_are_kept_and_re_emitted() {
    use ours::scalars::{Empty, Scalars};
    let full = Scalars {
        f_int32: 7,
        f_string: "kept".to_owned(),
        high_number: 3,
        ..Default::default()
    };
    let bytes = full.encode_to_vec();
    let empty = Empty::decode(&bytes).unwrap();
    assert_eq!(empty.unknown_fields.as_bytes(), bytes.as_slice());
    assert_eq!(
        empty.encode_to_vec(),
        bytes,
        "unknown fields go back on the wire unchanged"
    );
    assert_eq!(Scalars::decode(&empty.encode_to_vec()).unwrap(), full);
}

#[test]
fn unknown_fields_can_be_discarded() {
    use ours::options_btree_discard::Settings;
    use ours::scalars::Scalars;
    let other = Scalars {
        f_int64: 99,
        ..Default::default()
    };
    let settings = Settings::decode(&other.encode_to_vec()).unwrap();
    assert_eq!(settings, Settings::default());
    assert!(settings.encode_to_vec().is_empty());
}

/// `proto!` fills the fields not named, `unknown_fields` included, and compiles without a
/// lint when every field is named (a message without unknown fields, where the struct update
/// is needless; clippy runs on this file with warnings denied).
#[test]
fn proto_macro_fills_the_rest() {
    use ours::options_btree_discard::Settings;
    use ours::proto3_optional::{Inner, Optionals};
    use rust_rpc::proto;
    let value = 5;
    let built = proto!(Optionals {
        count: Some(1),
        inner: Some(proto!(Inner { value }))
    });
    let literal = Optionals {
        count: Some(1),
        inner: Some(Inner {
            value: 5,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(built, literal);
    assert!(built.unknown_fields.is_empty());
    let name = "all".to_owned();
    let every_field = proto!(Settings {
        limits: [("a".to_owned(), 1)].into(),
        name
    });
    assert_eq!(every_field.name, "all");
    assert_eq!(every_field.limits.len(), 1);
}

/// `clear()` resets every field (presence, oneofs and unknown fields included) and keeps the
/// allocations of strings, repeated fields and maps, so clearing and merging again reuses them.
#[test]
fn clear_resets_everything_and_keeps_capacity() {
    use ours::lenient::leniency::closed::{holder::Pick, Holder};
    use ours::scalars::Scalars;
    let full = Scalars {
        f_int32: -5,
        f_bool: true,
        f_string: "a string longer than nothing".into(),
        f_bytes: vec![7; 100],
        high_number: 9,
        ..Default::default()
    };
    let mut bytes = full.encode_to_vec();
    rust_rpc::encoding::encode_key(9_000, rust_rpc::encoding::WireType::Varint, &mut bytes);
    rust_rpc::encoding::encode_varint(1, &mut bytes);
    let mut message = Scalars::decode(&bytes).unwrap();
    assert!(!message.unknown_fields.is_empty());
    let (string, blob) = (message.f_string.as_ptr(), message.f_bytes.as_ptr());
    message.clear();
    assert_eq!(message, Scalars::default());
    assert!(message.f_string.capacity() >= full.f_string.len());
    assert!(message.f_bytes.capacity() >= 100);
    message.merge(&bytes).unwrap();
    assert_eq!(message.f_string, full.f_string);
    assert_eq!(
        message.f_string.as_ptr(),
        string,
        "the string's allocation is reused"
    );
    assert_eq!(
        message.f_bytes.as_ptr(),
        blob,
        "the bytes' allocation is reused"
    );

    let holder = Holder::decode(
        &Holder {
            many: vec![Default::default(); 3],
            by_name: [("x".to_owned(), Default::default())].into(),
            one: Some(Default::default()),
            pick: Some(Pick::Picked(Default::default())),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .unwrap();
    let mut cleared = holder.clone();
    cleared.clear();
    assert_eq!(cleared, Holder::default());
    assert!(cleared.many.capacity() >= 3);
}

#[test]
fn last_value_wins_and_messages_merge() {
    use ours::proto3_optional::{Inner, Optionals};
    let first = Optionals {
        count: Some(1),
        inner: Some(Inner {
            value: 5,
            ..Default::default()
        }),
        ..Default::default()
    };
    let second = Optionals {
        count: Some(2),
        label: Some("b".to_owned()),
        ..Default::default()
    };
    let mut bytes = first.encode_to_vec();
    bytes.extend(second.encode_to_vec());
    let merged = Optionals::decode(&bytes).unwrap();
    assert_eq!(merged.count, Some(2));
    assert_eq!(merged.label.as_deref(), Some("b"));
    assert_eq!(merged.inner.unwrap().value, 5);
}

#[test]
fn optional_fields_track_presence_of_zero() {
    use ours::proto3_optional::{Mood, Optionals};
    let zeroes = Optionals {
        count: Some(0),
        label: Some(String::new()),
        mood: Some(Mood::UNSPECIFIED),
        flag: Some(false),
        ..Default::default()
    };
    let bytes = round_trip(&zeroes);
    assert!(!bytes.is_empty(), "present zero values are encoded");
    assert_eq!(Optionals::default().count(), 0);
    assert_eq!(Optionals::default().label(), "");
}

#[test]
fn repeated_fields_accept_packed_and_unpacked() {
    use ours::repeated::{Level, Point, Repeated};
    let msg = Repeated {
        ints: vec![0, -1, i32::MAX],
        zigzags: vec![i64::MIN, 0, 5],
        fixeds: vec![1, 2],
        doubles: vec![0.5, -0.0],
        flags: vec![true, false],
        levels: vec![Level::HIGH, Level::from(42)],
        unpacked_ints: vec![3, 4],
        names: vec![String::new(), "x".to_owned()],
        blobs: vec![vec![], vec![1]],
        points: vec![
            Point {
                x: -1,
                y: 1,
                ..Default::default()
            },
            Point::default(),
        ],
        ..Default::default()
    };
    let bytes = round_trip(&msg);
    // Packed ints: key 0x0a; unpacked: key 0x38 per element.
    assert_eq!(bytes[0], 0x0a);
    assert_eq!(bytes.iter().filter(|&&b| b == 0x38).count(), 2);

    // The same values sent the other way round still decode.
    let mut unpacked = Vec::new();
    for v in [5u8, 6] {
        unpacked.extend([0x08, v]);
    }
    let mut packed_for_unpacked = vec![0x3a, 0x02, 0x07, 0x08];
    packed_for_unpacked.extend(unpacked);
    let decoded = Repeated::decode(&packed_for_unpacked).unwrap();
    assert_eq!(decoded.unpacked_ints, [7, 8]);
    assert_eq!(decoded.ints, [5, 6]);
}

#[test]
fn maps_round_trip_and_later_entries_win() {
    use ours::maps::{Color, Maps, Value};
    let mut msg = Maps::default();
    msg.labels.insert("a".to_owned(), "1".to_owned());
    msg.labels.insert(String::new(), String::new());
    msg.blobs.insert(-5, vec![1, 2]);
    msg.colors.insert(u64::MAX, Color::RED);
    msg.colors.insert(1, Color::from(77));
    msg.values.insert(
        "v".to_owned(),
        Value {
            text: "t".to_owned(),
            ..Default::default()
        },
    );
    msg.scores.insert(i32::MIN, f64::INFINITY);
    msg.flags.insert(true, 9);
    round_trip(&msg);

    let mut first = Maps::default();
    first.labels.insert("k".to_owned(), "old".to_owned());
    let mut second = Maps::default();
    second.labels.insert("k".to_owned(), "new".to_owned());
    let mut bytes = first.encode_to_vec();
    bytes.extend(second.encode_to_vec());
    assert_eq!(Maps::decode(&bytes).unwrap().labels["k"], "new");

    // An entry with neither key nor value decodes as the defaults.
    let decoded = Maps::decode(&[0x0a, 0x00]).unwrap();
    assert_eq!(decoded.labels.get(""), Some(&String::new()));
}

#[test]
fn oneof_members_replace_each_other_and_messages_merge() {
    use ours::oneofs::{choice, Choice, Leaf};
    for value in [
        choice::Value::Text("t".to_owned()),
        choice::Value::Number(-3),
        choice::Value::Raw(vec![]),
        choice::Value::Leaf(Leaf {
            name: "l".to_owned(),
            ..Default::default()
        }),
        choice::Value::KindValue(choice::Kind::A),
    ] {
        let msg = Choice {
            value: Some(value),
            kind: Some(choice::KindOneof::On(false)),
            after: 1,
            ..Default::default()
        };
        round_trip(&msg);
    }
    let text = Choice {
        value: Some(choice::Value::Text("x".into())),
        ..Default::default()
    };
    let number = Choice {
        value: Some(choice::Value::Number(9)),
        ..Default::default()
    };
    let mut bytes = text.encode_to_vec();
    bytes.extend(number.encode_to_vec());
    assert_eq!(
        Choice::decode(&bytes).unwrap().value,
        Some(choice::Value::Number(9))
    );
}

#[test]
fn enums_are_open_and_named() {
    use ours::enums::{Holder, Keyword, Plain, Status};
    assert_eq!(Status::OK, Status::SUCCESS);
    assert_eq!(Status::SUCCESS.name(), Some("STATUS_OK"));
    assert_eq!(Status::from_name("STATUS_SUCCESS"), Some(Status::OK));
    assert_eq!(Status::FAILED.0, -2);
    assert_eq!(
        Status::VALUES,
        [Status::UNKNOWN, Status::OK, Status::FAILED]
    );
    assert_eq!(Keyword::SELF.name(), Some("KEYWORD_SELF"));
    assert_eq!(Keyword::KEYWORD_1ST.0, 3);
    assert_eq!(Plain::TWO.0, 2);
    assert_eq!(format!("{:?}", Status::OK), "STATUS_OK");
    assert_eq!(format!("{:?}", Status::from(12)), "12");
    assert!(!Status::from(12).is_known());
    assert_eq!(<Status as Enumeration>::FULL_NAME, "enums.Status");
    assert_eq!(
        ours::enums::Folded::from_name("moo"),
        Some(ours::enums::Folded::MOO)
    );
    assert_eq!(ours::enums::Folded::MOO.name(), Some("MOO"));

    let msg = Holder {
        status: Status::from(1000),
        keyword: Keyword::TYPE,
        plains: vec![Plain::from(-7), Plain::ONE],
        ..Default::default()
    };
    let back = Holder::decode(&round_trip(&msg)).unwrap();
    assert_eq!(back.status.0, 1000, "unknown enum numbers survive");
}

#[test]
fn proto2_defaults_and_groups() {
    use ours::proto2::{defaults, Defaults, Priority};
    let d = Defaults::default();
    assert_eq!(
        d.name, None,
        "required fields keep presence: unset at first"
    );
    assert_eq!(
        d.name(),
        "unnamed",
        "their getters give the declared default"
    );
    assert_eq!(d.retries(), 3);
    assert_eq!(d.offset(), -42);
    assert_eq!(d.big(), u64::MAX);
    assert_eq!(d.ratio(), 0.5);
    assert_eq!(d.limit(), f64::INFINITY);
    assert!(d.nothing().is_nan());
    assert!(d.enabled());
    assert_eq!(d.greeting(), "hello \"world\"\n");
    assert_eq!(d.magic(), b"\x01\x02\xffok");
    assert_eq!(d.priority(), Priority::LOW);
    assert_eq!(
        d.first_by_default(),
        Priority::HIGH,
        "first declared value is the default"
    );
    assert_eq!(d.required_priority(), Priority::HIGH);
    assert_eq!(
        d.missing_required_fields(),
        ["id", "name", "required_priority"]
    );
    assert!(!d.is_initialized());
    assert_eq!(d.no_default(), "");
    assert_eq!(d.retries, None);

    let msg = Defaults {
        id: Some(0),
        retries: Some(0),
        settings: Some(defaults::Settings {
            level: Some(2),
            mode: None,
            ..Default::default()
        }),
        entry: vec![
            defaults::Entry {
                key: Some("a".into()),
                value: Some(-1),
                ..Default::default()
            },
            defaults::Entry {
                key: None,
                value: None,
                ..Default::default()
            },
        ],
        unpacked: vec![1, 2],
        packed: vec![3, 4],
        ..Default::default()
    };
    let bytes = round_trip(&msg);
    // A required field set to zero is written: key 0x08, value 0; unset ones are not.
    assert_eq!(&bytes[..2], &[0x08, 0x00]);
    assert_eq!(
        msg.missing_required_fields(),
        ["name", "required_priority", "entry[1].key"]
    );
    // The group starts with wire type 3 at field 20 and ends with wire type 4.
    assert!(bytes.windows(2).any(|w| w == [0xa3, 0x01]));
    assert!(bytes.windows(2).any(|w| w == [0xa4, 0x01]));
}

#[test]
fn unterminated_group_is_an_error() {
    use ours::proto2::Defaults;
    // Field 20 start-group, then the input ends.
    let err = Defaults::decode(&[0xa3, 0x01]).unwrap_err();
    assert_eq!(*err.kind(), DecodeErrorKind::UnterminatedGroup(20));
    // A stray end-group at top level.
    let err = Defaults::decode(&[0xa4, 0x01]).unwrap_err();
    assert_eq!(*err.kind(), DecodeErrorKind::UnexpectedEndGroup(20));
}

#[test]
fn recursive_types_nest_and_hit_the_limit() {
    use ours::recursive::{expr, Expr, Tree};
    let mut tree = Tree {
        value: 0,
        ..Default::default()
    };
    for i in 1..50 {
        tree = Tree {
            value: i,
            left: Some(Box::new(tree)),
            ..Default::default()
        };
    }
    round_trip(&tree);

    // A value nested as deeply as the decoder allows encodes and decodes; one level more is
    // refused on encode, so no value the program builds can overflow the encoder's stack.
    let nest = |levels: usize| {
        let mut deep = Expr {
            node: Some(expr::Node::Literal(1)),
            ..Default::default()
        };
        for _ in 0..levels {
            deep = Expr {
                node: Some(expr::Node::Negate(Box::new(deep))),
                ..Default::default()
            };
        }
        deep
    };
    round_trip(&nest(100));
    let err = nest(101).try_encode_to_bytes().unwrap_err();
    assert_eq!(err, rust_rpc::EncodeError::TooDeep { limit: 100 });

    // Bytes nested 150 deep, written by hand, hit the decoder's limit.
    let mut bytes = nest(0).encode_to_vec();
    for _ in 0..150 {
        let mut outer = vec![0x12];
        rust_rpc::encoding::encode_varint(bytes.len() as u64, &mut outer);
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    let err = Expr::decode(&bytes).unwrap_err();
    assert_eq!(*err.kind(), DecodeErrorKind::RecursionLimit(100));
}

#[test]
fn malformed_input_fails_with_offsets() {
    use ours::scalars::Scalars;
    let cases: &[(&[u8], DecodeErrorKind, usize)] = &[
        (&[0x18], DecodeErrorKind::TruncatedVarint, 1),
        (
            &[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            DecodeErrorKind::VarintTooLong,
            1,
        ),
        (
            &[0x72, 0x05, b'a'],
            DecodeErrorKind::LengthOutOfBounds {
                length: 5,
                remaining: 1,
            },
            1,
        ),
        (&[0x72, 0x01, 0xff], DecodeErrorKind::InvalidUtf8, 1),
        (
            &[0x18, 0x01, 0x00],
            DecodeErrorKind::InvalidFieldNumber(0),
            2,
        ),
        (&[0x09, 0x00, 0x00], DecodeErrorKind::TruncatedFixed, 1),
    ];
    for (bytes, kind, offset) in cases {
        let err = Scalars::decode(bytes).unwrap_err();
        assert_eq!(err.kind(), kind, "input {bytes:02x?}");
        assert_eq!(err.offset(), *offset, "input {bytes:02x?}");
    }
    // A known field with another wire type is not an error: like protobuf's reference parsers,
    // decoding keeps it with the unknown fields and writes it back.
    let kept = Scalars::decode(&[0x1a, 0x00]).expect("field 3 as bytes decodes");
    assert_eq!(kept.unknown_fields.as_bytes(), &[0x1a, 0x00]);
    assert_eq!(kept.encode_to_vec(), [0x1a, 0x00]);
}

#[test]
fn nested_and_cross_package_types_link_up() {
    use ours::cross_package::cross::draw::v1::Canvas;
    use ours::cross_package::cross::shapes::{Circle, Ring, Unit};
    use ours::nested::{outer, Outer, Reader};
    let outer = Outer {
        middle: Some(outer::Middle {
            inner: Some(outer::middle::Inner {
                depth: outer::middle::inner::Depth::DEEP,
                shade: outer::Shade::DARK,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    round_trip(&outer);
    round_trip(&Reader {
        depth: outer::middle::inner::Depth::DEEP,
        ..Default::default()
    });
    let circle = Circle {
        radius: 1.5,
        unit: Unit::MM,
        ..Default::default()
    };
    let mut canvas = Canvas {
        circles: vec![circle.clone()],
        ring: Some(Ring {
            outer: Some(circle.clone()),
            inner: None,
            ..Default::default()
        }),
        unit: Unit::MM,
        ..Default::default()
    };
    canvas.named.insert("c".to_owned(), circle);
    round_trip(&canvas);
}

#[test]
fn keywords_and_clashing_names_work() {
    use ours::keywords::{r#struct, Self_, Struct};
    let s = Self_ {
        r#type: 1,
        r#match: "m".to_owned(),
        r#async: true,
        unknown_fields_: 4,
        crate_: 5,
        ..Default::default()
    };
    round_trip(&s);
    round_trip(&Struct {
        r#fn: Some(s),
        r#type: Some(r#struct::Type::Impl("i".into())),
        ..Default::default()
    });
}

#[test]
fn well_known_types_are_usable_from_generated_code() {
    use ours::wkt::Event;
    let event = Event {
        at: Some(rust_rpc::wkt::Timestamp {
            seconds: 1,
            nanos: 2,
            ..Default::default()
        }),
        maybe_text: Some(rust_rpc::wkt::StringValue {
            value: "v".into(),
            ..Default::default()
        }),
        null: rust_rpc::wkt::NullValue::NULL_VALUE,
        ..Default::default()
    };
    round_trip(&event);
}

#[test]
fn full_names_are_the_proto_names() {
    assert_eq!(
        ours::nested::outer::middle::Inner::FULL_NAME,
        "nested.Outer.Middle.Inner"
    );
    assert_eq!(ours::no_package::Loose::FULL_NAME, "Loose");
    assert_eq!(ours::keywords::Self_::FULL_NAME, "keywords.self");
}

/// Encoding is linear in the nesting of maps whose values are messages: each nested message is
/// measured once, never again for each level above it (which made a 20-level
/// `google.protobuf.Struct` take 64 ms and each further level double it).
#[test]
fn encoding_work_grows_linearly_with_map_nesting() {
    use ours::recursive::Tree;
    use rust_rpc::wkt::{value, Struct, Value};

    fn visits(message: &impl Message) -> u64 {
        let before = rust_rpc::encoding::nested_visits();
        let bytes = message.encode_to_vec();
        let visits = rust_rpc::encoding::nested_visits() - before;
        assert_eq!(bytes.len(), message.encoded_len());
        visits
    }

    let tree = |levels: usize| {
        let mut tree = Tree::default();
        for i in 0..levels {
            let mut outer = Tree {
                value: i as i32,
                ..Default::default()
            };
            outer.named.insert(format!("level-{i}"), tree);
            tree = outer;
        }
        tree
    };
    // Each level is two deep for the decoder's limit of 100 (the map entry, then the Tree in
    // it), and so for the encoder's: 50 levels are as deep as either goes.
    assert_eq!(visits(&tree(10)), 10);
    assert_eq!(visits(&tree(50)), 50);
    round_trip(&tree(50));
    assert!(tree(51).try_encode_to_bytes().is_err());

    // A Struct level is three deep (the entry, the Value, the Struct in it): 33 levels.
    let structure = |levels: usize| {
        let mut s = Struct::default();
        for _ in 0..levels {
            let mut outer = Struct::default();
            outer.fields.insert(
                "next".into(),
                Value {
                    kind: Some(value::Kind::StructValue(s)),
                    ..Default::default()
                },
            );
            s = outer;
        }
        s
    };
    assert_eq!(visits(&structure(10)), 20);
    assert_eq!(visits(&structure(33)), 66);
    let bytes = structure(33).encode_to_vec();
    assert_eq!(Struct::decode(&bytes).unwrap(), structure(33));
    assert!(structure(34).try_encode_to_bytes().is_err());
}

/// A default names the value it names, even where the value's constant had to be renamed.
#[test]
fn enum_defaults_follow_renamed_constants() {
    use ours::enum_default_names::{E, M};
    let m = M::default();
    assert_eq!(i32::from(m.renamed()), 1);
    assert_eq!(m.renamed(), E::FOO_BAR_2);
    assert_eq!(i32::from(m.plain()), 0);
    assert_eq!(m.plain(), E::FOO_BAR);
}

/// Fields go on the wire in field-number order, oneof members included, wherever other fields
/// interleave with them.
#[test]
fn oneof_members_are_written_at_their_own_numbers() {
    use ours::oneofs::{interleaved::Pick, Interleaved};
    let value = Interleaved {
        first: 1,
        middle: 3,
        last: 6,
        pick: Some(Pick::High("h".into())),
        ..Default::default()
    };
    let bytes = round_trip(&value);
    assert_eq!(bytes, [0x08, 1, 0x18, 3, 0x22, 1, b'h', 0x30, 6]);
    let value = Interleaved {
        pick: Some(Pick::Low(2)),
        ..value
    };
    assert_eq!(round_trip(&value), [0x08, 1, 0x10, 2, 0x18, 3, 0x30, 6]);
}

/// `Debug` shows unknown fields only when there are some.
#[test]
fn debug_leaves_out_empty_unknown_fields() {
    use ours::scalars::Scalars;
    let plain = Scalars {
        f_int32: 7,
        ..Default::default()
    };
    let shown = format!("{plain:?}");
    assert!(shown.starts_with("Scalars { "), "{shown}");
    assert!(shown.contains("f_int32: 7"), "{shown}");
    assert!(!shown.contains("unknown_fields"), "{shown}");
    let mut with_unknown = plain.clone();
    with_unknown.merge(&[0xf8, 0x3f, 0x01]).unwrap();
    assert!(format!("{with_unknown:?}").contains("unknown_fields: UnknownFields(3 bytes)"));
}

/// Fields generated as `Bytes` (the `bytes` option) share the input's buffer when decoding
/// from a `Bytes`, and are copies when decoding from a slice.
#[test]
fn bytes_fields_share_the_input_when_decoding_from_bytes() {
    use ours::bytes_option::{Blob, Plain};
    use rust_rpc::bytes::Bytes;
    let blob = Blob {
        data: Some(Bytes::from(vec![7u8; 100])),
        chunks: vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")],
        must: Some(Bytes::from_static(b"must")),
        plain: Some(Plain {
            data: Some(vec![1, 2, 3]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let wire = blob.encode_to_bytes();
    let inside = |field: &Bytes| {
        let start = wire.as_ptr() as usize;
        (start..start + wire.len()).contains(&(field.as_ptr() as usize))
    };
    let shared = Blob::decode_bytes(&wire).unwrap();
    assert_eq!(shared, blob);
    assert!(shared.data.as_ref().is_some_and(inside));
    assert!(shared.chunks.iter().all(inside));
    let copied = Blob::decode(&wire).unwrap();
    assert_eq!(copied, blob);
    assert!(!copied.data.as_ref().is_some_and(inside));
    // Declared defaults hold for `Bytes` fields too.
    assert_eq!(Blob::default().with_default(), b"a\x01");
    assert_eq!(Blob::default().must(), b"x");
}

/// `Message` is object safe: messages of different types go through one `&dyn Message` and
/// one `Box<dyn Message>` to be encoded and merged; `decode_length_delimited` says how many
/// bytes each took, so a reader of a stream of them goes on from there.
#[test]
fn messages_work_behind_dyn_and_length_delimited_reports_what_it_took() {
    use ours::services::{Number, Text};
    let number = Number {
        value: 300,
        ..Default::default()
    };
    let text = Text {
        text: "x".repeat(200),
        ..Default::default()
    };
    let all: [&dyn Message; 2] = [&number, &text];
    let mut stream = Vec::new();
    for message in all {
        message.encode_length_delimited(&mut stream);
    }
    // 300 takes 2 bytes after its tag; 200 bytes of text need a 2-byte length inside and a
    // 2-byte prefix outside.
    let (first, used) = Number::decode_length_delimited(&stream).unwrap();
    assert_eq!((first, used), (number.clone(), 1 + 3));
    let (second, rest) = Text::decode_length_delimited(&stream[used..]).unwrap();
    assert_eq!((second, rest), (text.clone(), 2 + 3 + 200));
    assert_eq!(used + rest, stream.len());

    let mut boxed: Box<dyn Message> = Box::new(Number::default());
    boxed.merge(&number.encode_to_vec()).unwrap();
    assert_eq!(boxed.encode_to_vec(), number.encode_to_vec());
    assert_eq!(boxed.encoded_len(), 3);
}

/// Proto2 `required` fields keep presence (`Option`), encode only when set, and an unset one
/// is reported with its path wherever it sits: in a field, a list, a map, a oneof, or down a
/// chain of recursive messages.
#[test]
fn required_fields_keep_presence_and_report_what_is_missing() {
    use ours::lenient::leniency::closed::{holder, Holder, Node, Required, E2};
    let partial = Required {
        s: Some("a".into()),
        ..Default::default()
    };
    let bytes = partial.encode_to_vec();
    assert_eq!(
        bytes,
        [0x12, 0x01, b'a'],
        "an unset required field is not written"
    );
    let back = Required::decode(&bytes).expect("a partial message decodes");
    assert_eq!(back, partial);
    assert_eq!(back.missing_required_fields(), ["e"]);
    assert!(!back.is_initialized());
    let full = Required {
        e: Some(E2::E_ZERO),
        ..partial.clone()
    };
    assert!(full.is_initialized());
    assert_eq!(full.encode_to_vec(), [0x08, 0x00, 0x12, 0x01, b'a']);

    let mut holder = Holder {
        one: Some(full.clone()),
        many: vec![full.clone(), partial.clone(), Required::default()],
        by_name: [("k".to_owned(), partial.clone())].into(),
        pick: Some(holder::Pick::Picked(Required::default())),
        chain: Some(Node {
            id: Some(1),
            next: Some(Box::new(Node::default())),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        holder.missing_required_fields(),
        [
            "many[1].e",
            "many[2].e",
            "many[2].s",
            "by_name[\"k\"].e",
            "chain.next.id",
            "picked.e",
            "picked.s",
        ]
    );
    holder.many.truncate(1);
    holder.by_name.clear();
    holder.pick = None;
    holder.chain = None;
    assert!(holder.is_initialized());

    // A chain deeper than the encoder's limit is walked to the limit, not without bound.
    let mut deep = Node::default();
    for _ in 0..10_000 {
        deep = Node {
            id: Some(0),
            next: Some(Box::new(deep)),
            ..Default::default()
        };
    }
    assert!(deep.is_initialized());
    let mut node = deep;
    while let Some(next) = node.next.take() {
        node = *next;
    }
}
