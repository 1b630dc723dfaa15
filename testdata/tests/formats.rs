//! Protobuf's JSON mapping and text format (options `json` and `text`, runtime features of the
//! same names), checked against Python's protobuf (`json_format`, `text_format`, upb) as the
//! reference: for each value, Python must read our JSON and text as the message our binary
//! encoding says, and we must read Python's JSON and text back as the value; for each input,
//! both sides must accept or both reject it, and agree on the message. The forms the spec
//! fixes (64-bit integers as strings, enum names, base64, the well-known types' texts, field
//! names, escapes) are asserted directly.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rust_rpc::json::{self, JsonOptions, TypeRegistry};
use rust_rpc::text::{self, TextMessage, TextOptions};
use rust_rpc::wkt::{self, value::Kind};
use rust_rpc::{Extendable, Message, Name};
use rust_rpc_testdata::ours::json2::{self, Level, Record};
use rust_rpc_testdata::ours::json3::{everything::Choice, Color, Everything, Leaf, Nothing};

fn leaf(name: &str) -> Leaf {
    Leaf {
        name: name.to_owned(),
        ..Default::default()
    }
}

fn value(kind: Kind) -> wkt::Value {
    wkt::Value {
        kind: Some(kind),
        ..Default::default()
    }
}

fn full() -> Everything {
    let mut details = wkt::Struct::default();
    details
        .fields
        .insert("n".into(), value(Kind::NumberValue(1.5)));
    details
        .fields
        .insert("s".into(), value(Kind::StringValue("x".into())));
    details.fields.insert(
        "l".into(),
        value(Kind::ListValue(wkt::ListValue {
            values: vec![
                value(Kind::BoolValue(true)),
                value(Kind::NullValue(wkt::NullValue::NULL_VALUE)),
            ],
            ..Default::default()
        })),
    );
    Everything {
        f_int32: -7,
        f_int64: i64::MIN,
        f_uint32: u32::MAX,
        f_uint64: u64::MAX,
        f_sint32: -1,
        f_sint64: 1 << 60,
        f_fixed32: 9,
        f_fixed64: 10,
        f_sfixed32: -11,
        f_sfixed64: -12,
        f_float: 1.25,
        f_double: -0.1,
        f_bool: true,
        f_string: "é \"quoted\" \u{1F600}".into(),
        f_bytes: vec![0, 0xfb, 0xff, 7],
        color: Color::BLUE,
        maybe: Some(0),
        leaf: Some(leaf("one")),
        child: Some(Box::new(Everything {
            f_int32: 1,
            ..Default::default()
        })),
        counts: vec![1, -2, 3_000_000_000],
        colors: vec![Color::RED, Color(42)],
        leaves: vec![leaf("a"), leaf("")],
        by_name: HashMap::from([("k".into(), leaf("v"))]),
        by_number: HashMap::from([(-5, Color::RED), (6, Color::BLUE)]),
        by_flag: HashMap::from([(true, "t".into()), (false, "f".into())]),
        choice: Some(Choice::Picked(leaf("chosen"))),
        at: Some(wkt::Timestamp {
            seconds: 1_700_000_000,
            nanos: 120_000_000,
            ..Default::default()
        }),
        took: Some(wkt::Duration {
            seconds: -3,
            nanos: -500,
            ..Default::default()
        }),
        mask: Some(wkt::FieldMask {
            paths: vec!["f_int32".into(), "leaf.name".into()],
            ..Default::default()
        }),
        details: Some(details),
        anything: Some(value(Kind::StringValue("any".into()))),
        list: Some(wkt::ListValue {
            values: vec![value(Kind::NumberValue(2.0))],
            ..Default::default()
        }),
        payload: Some(wkt::Any {
            type_url: Leaf::type_url(),
            value: leaf("inside").encode_to_vec(),
            ..Default::default()
        }),
        big: Some(wkt::Int64Value {
            value: 1 << 62,
            ..Default::default()
        }),
        label: Some(wkt::StringValue::default()),
        nothing: wkt::NullValue::NULL_VALUE,
        renamed: 5,
        ..Default::default()
    }
}

fn registry() -> Arc<TypeRegistry> {
    let mut registry = TypeRegistry::new();
    registry
        .register::<Leaf>()
        .register::<Everything>()
        .register_extension(&json2::TAG)
        .register_extension(&json2::MARKS);
    Arc::new(registry)
}

fn options() -> JsonOptions {
    JsonOptions::new().registry(registry())
}

fn text_options() -> TextOptions {
    let mut registry = text::TypeRegistry::new();
    registry
        .register::<Leaf>()
        .register::<Everything>()
        .register_extension(&json2::TAG)
        .register_extension(&json2::MARKS);
    TextOptions::new().registry(Arc::new(registry))
}

fn record() -> Record {
    let mut r = Record {
        id: Some(3),
        name: Some("n".into()),
        level: Some(Level::LOW),
        history: vec![Level::HIGH, Level::LOW],
        extra: Some(json2::record::Extra {
            note: Some("x".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.set_extension(&json2::TAG, Some("tagged".into()));
    r.set_extension(&json2::MARKS, vec![1, -2]);
    r
}

#[test]
fn values_take_the_forms_the_spec_gives() {
    let text = json::to_string_with(&full(), &options()).expect("write");
    let v: serde_json::Value = serde_json::from_str(&text).expect("our output is JSON");
    assert_eq!(v["fInt32"], -7);
    assert_eq!(v["fInt64"], "-9223372036854775808");
    assert_eq!(v["fUint64"], "18446744073709551615");
    assert_eq!(v["fBytes"], "APv/Bw==");
    assert_eq!(v["color"], "COLOR_BLUE");
    assert_eq!(v["colors"], serde_json::json!(["COLOR_RED", 42]));
    assert_eq!(
        v["maybe"], 0,
        "a field with presence is written when set, even to 0"
    );
    assert_eq!(v["byNumber"]["-5"], "COLOR_RED");
    assert_eq!(v["byFlag"]["true"], "t");
    assert_eq!(v["picked"]["name"], "chosen");
    assert_eq!(v["at"], "2023-11-14T22:13:20.120Z");
    assert_eq!(v["took"], "-3.000000500s");
    assert_eq!(v["mask"], "fInt32,leaf.name");
    assert_eq!(v["details"]["l"], serde_json::json!([true, null]));
    assert_eq!(
        v["payload"],
        serde_json::json!({"@type": "type.googleapis.com/json3.Leaf", "name": "inside"})
    );
    assert_eq!(v["big"], "4611686018427387904");
    assert_eq!(v["label"], "");
    assert_eq!(v["otherName"], 5);
    assert!(
        v.get("nothing").is_none(),
        "an implicit NullValue is its default"
    );
    assert!(v.get("fSint32").is_some() && v.get("f_sint32").is_none());

    let back: Everything = json::from_str_with(&text, &options()).expect("read back");
    assert_eq!(back, full());

    // Options: .proto names, and defaults printed for fields without presence only.
    let plain = JsonOptions::new().proto_names(true).emit_defaults(true);
    let text = json::to_string_with(&Everything::default(), &plain).expect("write");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["f_int64"], "0");
    assert_eq!(v["color"], "COLOR_UNSPECIFIED");
    assert_eq!(v["counts"], serde_json::json!([]));
    assert_eq!(v["by_name"], serde_json::json!({}));
    assert_eq!(v["nothing"], serde_json::Value::Null);
    assert!(v.get("maybe").is_none() && v.get("leaf").is_none() && v.get("text").is_none());
    assert_eq!(json::to_string(&Nothing::default()).expect("write"), "{}");

    // proto2: extensions by the registry, closed enums by name, groups as messages.
    let text = json::to_string_with(&record(), &options()).expect("write");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["[json2.tag]"], "tagged");
    assert_eq!(v["[json2.marks]"], serde_json::json!([1, -2]));
    assert_eq!(v["history"], serde_json::json!(["HIGH", "LOW"]));
    let back: Record = json::from_str_with(&text, &options()).expect("read back");
    assert_eq!(
        back.extension(&json2::TAG).expect("tag"),
        Some("tagged".into())
    );
    assert_eq!(back.extension(&json2::MARKS).expect("marks"), vec![1, -2]);
    assert_eq!(back.extra, record().extra);
    // Without the extensions in the registry they are not written.
    let text = json::to_string(&record()).expect("write");
    assert!(!text.contains("json2.tag"), "{text}");
}

#[test]
fn bad_input_gets_an_error_that_says_what() {
    let cases = [
        (r#"{"fInt32": 2147483648}"#, "out of range"),
        (r#"{"fInt32": 1.5}"#, "whole number"),
        (r#"{"fUint32": -1}"#, "out of range"),
        (r#"{"nope": 1}"#, "no field named \"nope\""),
        (r#"{"fInt32": 1, "f_int32": 2}"#, "more than once"),
        (r#"{"otherName": 3, "renamed": 4}"#, "more than once"),
        (
            r#"{"text": "a", "picked": {}}"#,
            "another field already set",
        ),
        (r#"{"color": "COLOR_GREEN"}"#, "no value named"),
        (r#"{"fBytes": "@@"}"#, "base64"),
        (r#"{"fBool": "true"}"#, "expected a boolean"),
        (r#"{"at": "1970-01-01T00:00:00z"}"#, "RFC 3339"),
        (r#"{"took": "1.5"}"#, "duration"),
        (r#"{"mask": "foo_bar"}"#, "lowerCamelCase"),
        (r#"{"counts": [1, null]}"#, "null is not a list element"),
        (r#"{"byName": {"k": null}}"#, "null is not a map value"),
        (
            r#"{"byNumber": {"x": "COLOR_RED"}}"#,
            "does not fit the key type",
        ),
        (
            r#"{"payload": {"@type": "type.googleapis.com/no.Such"}}"#,
            "does not know",
        ),
        ("null", "null is not a json3.Everything"),
        ("[]", "expected a JSON object"),
    ];
    for (text, why) in cases {
        let err = json::from_str_with::<Everything>(text, &options())
            .err()
            .unwrap_or_else(|| panic!("{text} parses"));
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    // Skipped on request: unknown fields and enum names.
    let lenient = options().ignore_unknown_fields(true);
    let m: Everything = json::from_str_with(
        r#"{"nope": {"deep": [1]}, "color": "COLOR_GREEN", "colors": ["COLOR_GREEN", "COLOR_RED"], "fInt32": 4}"#,
        &lenient,
    )
    .expect("lenient parse");
    assert_eq!(
        (m.f_int32, m.color, m.colors),
        (4, Color::UNSPECIFIED, vec![Color::RED])
    );
    // Keys given twice are refused inside an Any and for extensions too, as in messages.
    for text in [
        r#"{"payload": {"@type": "type.googleapis.com/json3.Leaf", "name": "x", "name": "y"}}"#,
        r#"{"payload": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s", "value": "2s"}}"#,
        r#"{"payload": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"a": 1, "a": 2}}}"#,
    ] {
        let err = json::from_str_with::<Everything>(text, &options()).expect_err(text);
        assert!(err.to_string().contains("more than once"), "{text}: {err}");
    }
    let err =
        json::from_str_with::<Record>(r#"{"[json2.tag]": "a", "[json2.tag]": "b"}"#, &options())
            .expect_err("an extension twice");
    assert!(err.to_string().contains("more than once"), "{err}");
    let err = json::from_str_with::<Everything>(r#"{"fInt32": 1, "f_int32": 2}"#, &options())
        .expect_err("a field twice");
    assert!(err.to_string().contains("\"f_int32\" (number 1)"), "{err}");
    // What we write, we read: 100 levels below the top, through a repeated field (two JSON
    // brackets a level, past serde_json's own limit of 128), as the binary codec allows.
    let mut tree = Everything::default();
    for _ in 0..100 {
        tree = Everything {
            kids: vec![tree],
            ..Default::default()
        };
    }
    let text = json::to_string(&tree).expect("100 levels write");
    assert_eq!(
        json::from_str::<Everything>(&text).expect("and read back"),
        tree
    );
    let deeper = Everything {
        kids: vec![tree],
        ..Default::default()
    };
    assert!(
        json::to_string(&deeper).is_err(),
        "101 levels below the top"
    );
    // Unknown fields skipped on request are nesting too.
    let skipped = format!(r#"{{"nope": {}0{}}}"#, "[".repeat(5000), "]".repeat(5000));
    let err = json::from_str_with::<Everything>(&skipped, &lenient).expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    // Nesting is capped both ways.
    let deep = format!("{}{}", r#"{"child":"#.repeat(150), "}".repeat(150));
    let err = json::from_str::<Everything>(&deep).expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    let mut m = Everything::default();
    for _ in 0..150 {
        m = Everything {
            child: Some(Box::new(m)),
            ..Default::default()
        };
    }
    let err = json::to_string(&m).expect_err("too deep to write");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    // Values the JSON form cannot express.
    let bad = [
        Everything {
            at: Some(wkt::Timestamp {
                seconds: -62_135_596_801,
                ..Default::default()
            }),
            ..Default::default()
        },
        Everything {
            took: Some(wkt::Duration {
                seconds: 1,
                nanos: -1,
                ..Default::default()
            }),
            ..Default::default()
        },
        Everything {
            mask: Some(wkt::FieldMask {
                paths: vec!["a__b".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
        Everything {
            anything: Some(value(Kind::NumberValue(f64::NAN))),
            ..Default::default()
        },
    ];
    for m in bad {
        assert!(json::to_string(&m).is_err(), "{m:?} writes");
    }
}

#[test]
fn text_takes_the_forms_protobuf_prints() {
    let text = text::to_string_with(&full(), &text_options());
    for line in [
        "f_int64: -9223372036854775808\n",
        "f_uint64: 18446744073709551615\n",
        "f_double: -0.1\n",
        "f_string: \"é \\\"quoted\\\" 😀\"\n",
        "f_bytes: \"\\000\\373\\377\\007\"\n",
        "color: COLOR_BLUE\n",
        "colors: 42\n",
        "child {\n  f_int32: 1\n}\n",
        "by_number {\n  key: -5\n  value: COLOR_RED\n}\nby_number {\n  key: 6\n",
        "picked {\n  name: \"chosen\"\n}\n",
        "renamed: 5\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    let back: Everything = text::from_str_with(&text, &text_options()).expect("read back");
    assert_eq!(back, full());

    let text = text::to_string_with(&record(), &text_options());
    assert!(text.contains("Extra {\n  note: \"x\"\n}\n"), "{text}");
    assert!(text.contains("[json2.tag]: \"tagged\"\n"), "{text}");
    assert!(
        text.contains("[json2.marks]: 1\n[json2.marks]: -2\n"),
        "{text}"
    );
    assert_eq!(
        text::from_str_with::<Record>(&text, &text_options()).expect("read back"),
        record()
    );
    // Unknown fields by number, on request; nested ones as messages when they read as such.
    let mut m = Everything::default();
    m.unknown_fields
        .extend_raw(&[0xa8, 0x1f, 0x07, 0xb2, 0x1f, 0x02, 0x08, 0x01]);
    let plain = text::to_string(&m);
    assert_eq!(plain, "");
    let printed = text::to_string_with(&m, &TextOptions::new().print_unknown_fields(true));
    assert_eq!(printed, "501: 7\n502 {\n  1: 1\n}\n");

    let errors = [
        (
            "f_int32: 1\n  nope: 2",
            "2:3: json3.Everything has no field named \"nope\"",
        ),
        (
            "f_int32: 2147483648",
            "1:10: 2147483648 is out of range for an int32",
        ),
        ("leaf { name: 'x'", "expected '}'"),
        ("f_string: '\\xff'", "not UTF-8"),
        ("f_int32: 1 f_int32: 2", "more than once"),
        ("text: 'a' picked { }", "another field already set"),
        ("f_string: 'a\nb'", "line break"),
        (
            "payload { [type.googleapis.com/no.Such] { } }",
            "does not know no.Such",
        ),
    ];
    for (input, why) in errors {
        let err = text::from_str_with::<Everything>(input, &text_options())
            .err()
            .unwrap_or_else(|| panic!("{input} parses"));
        assert!(err.to_string().contains(why), "{input}: {err}");
    }
    // A singular extension once only; registered extensions are not printed again by number.
    let err = text::from_str_with::<Record>("[json2.tag]: 'a' [json2.tag]: 'b'", &text_options())
        .expect_err("twice");
    assert!(err.to_string().contains("more than once"), "{err}");
    let printed = text::to_string_with(&record(), &text_options().print_unknown_fields(true));
    assert_eq!(printed.matches("tagged").count(), 1, "{printed}");
    // A new registry knows the well-known types.
    let m: Everything = text::from_str_with(
        "payload { [type.googleapis.com/google.protobuf.Duration] { seconds: 1 } }",
        &TextOptions::new().registry(Arc::new(text::TypeRegistry::new())),
    )
    .expect("a well-known type in an Any");
    assert_eq!(
        m.payload.expect("payload").type_url,
        "type.googleapis.com/google.protobuf.Duration"
    );
    // Oneof members print at their field numbers (`picked` is 27, `at` 29).
    let t = text::to_string(&full());
    assert!(
        t.find("picked {").expect("picked") < t.find("at {").expect("at"),
        "{t}"
    );
    let deep = format!("{}{}", "child { ".repeat(150), "}".repeat(150));
    let err = text::from_str::<Everything>(&deep).expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

/// JSON texts both sides read: each must be accepted by both or rejected by both. Left out
/// where Python is more lenient than protobuf's conformance suite asks (which our own error
/// test covers): a field given under both its names (the suite requires an error; Python
/// takes the last), base64 with characters outside both alphabets (Python drops them), and a
/// float just over the largest `float` that rounds to it (`3.4028235e38`, which C++ and Go
/// write for `f32::MAX` and we read; Python refuses it).
const INPUTS: &[(&str, &str)] = &[
    (
        "Everything",
        r#"{"fInt32": "12", "fInt64": 1e3, "fUint64": "18446744073709551615", "f_string": "snake"}"#,
    ),
    (
        "Everything",
        r#"{"fBytes": "-_8", "color": 2, "colors": [1, "COLOR_BLUE"], "fFloat": "Infinity", "fDouble": "-Infinity"}"#,
    ),
    (
        "Everything",
        r#"{"fSint64": "-9223372036854775808", "fFixed32": 4294967295, "fSfixed32": -2147483648, "fFloat": -1.5e38}"#,
    ),
    (
        "Everything",
        r#"{"at": "1972-01-01T10:00:20.021-05:00", "took": "-1.5s", "mask": "fooBar,baz.quxQuux"}"#,
    ),
    (
        "Everything",
        r#"{"payload": {"@type": "type.googleapis.com/json3.Leaf", "name": "x"}}"#,
    ),
    (
        "Everything",
        r#"{"payload": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"}}"#,
    ),
    (
        "Everything",
        r#"{"payload": {"value": {"a": [1, {}]}, "@type": "type.googleapis.com/google.protobuf.Struct"}}"#,
    ),
    (
        "Everything",
        r#"{"anything": null, "nothing": null, "big": null, "leaf": null, "counts": null}"#,
    ),
    (
        "Everything",
        r#"{"details": {"a": {"b": [null, false, "s", 1.5e300]}}, "list": [[], {}]}"#,
    ),
    (
        "Everything",
        r#"{"byName": {"k": {"name": "v"}, "": {}}, "byNumber": {"-5": "COLOR_RED"}, "byFlag": {"false": ""}}"#,
    ),
    ("Everything", r#"{"text": null, "picked": {"name": "p"}}"#),
    ("Everything", r#"{"nested": {"nested": {"text": "deep"}}}"#),
    ("Everything", r#"{"big": "12", "label": "l", "maybe": 0}"#),
    ("Everything", r#"{"fInt32": 2147483648}"#),
    ("Everything", r#"{"fInt32": 1.5}"#),
    ("Everything", r#"{"fInt64": "1.5"}"#),
    ("Everything", r#"{"fFloat": 3.5e38}"#),
    ("Everything", r#"{"nope": 1}"#),
    ("Everything", r#"{"text": "a", "picked": {}}"#),
    ("Everything", r#"{"color": "COLOR_GREEN"}"#),
    ("Everything", r#"{"fBool": "true"}"#),
    ("Everything", r#"{"at": "1970-01-01T00:00:00z"}"#),
    ("Everything", r#"{"at": "10000-01-01T00:00:00Z"}"#),
    ("Everything", r#"{"took": "315576000001s"}"#),
    ("Everything", r#"{"mask": "foo_bar"}"#),
    ("Everything", r#"{"counts": [1, null]}"#),
    (
        "Everything",
        r#"{"payload": {"@type": "type.googleapis.com/no.Such"}}"#,
    ),
    ("Everything", "null"),
    (
        "Record",
        r#"{"name": "n", "[json2.tag]": "t", "[json2.marks]": [1, 2], "extra": {"note": "x"}, "level": "LOW"}"#,
    ),
    ("Record", r#"{"level": 5}"#),
    ("Record", r#"{"level": 1, "history": ["HIGH", 1]}"#),
    ("Record", r#"{"[json2.nope]": 1}"#),
];

/// Text-format inputs both sides read, as `INPUTS` for JSON.
const TEXT_INPUTS: &[(&str, &str)] = &[
    ("Everything", "f_int32: 0x7fffffff f_int64: -9223372036854775808 f_uint64: 18446744073709551615"),
    ("Everything", "f_uint32: 017, f_float: 1.5f; f_double: -inf f_bool: t color: 2"),
    ("Everything", "f_string: 'a' \"b\"\n 'c\\x41\\101\\u00e9' f_bytes: '\\000\\377\\n'"),
    ("Everything", "counts: [1, -2, 3] counts: 4 colors: [COLOR_RED, 7] leaves [{name: 'a'}, <name: 'b'>]"),
    ("Everything", "by_name { key: 'k' value { name: 'v' } } by_number [{key: -5 value: COLOR_RED}, {key: 6}]"),
    ("Everything", "by_flag { key: true value: 'x' } by_flag { key: true value: 'y' }"),
    ("Everything", "leaf: { name: 'x' } child < f_int32: 1 child { } >  # a comment\n picked { name: 'p' }"),
    ("Everything", "at { seconds: 5 nanos: 6 } took { seconds: -1 } details { fields { key: 'a' value { null_value: NULL_VALUE } } }"),
    ("Everything", "payload { [type.googleapis.com/json3.Leaf] { name: 'inside' } }"),
    ("Everything", "payload { type_url: 'type.googleapis.com/json3.Leaf' value: '\\n\\001x' }"),
    ("Everything", "big { value: 12 } label { } renamed: 3 maybe: 0"),
    ("Everything", "f_int32: 2147483648"),
    ("Everything", "f_uint32: -1"),
    ("Everything", "f_int32: 1.5"),
    ("Everything", "f_int32 1"),
    ("Everything", "f_int32: 1 f_int32: 2"),
    ("Everything", "text: 'a' picked { }"),
    ("Everything", "color: COLOR_GREEN"),
    ("Everything", "f_string: '\\xff'"),
    ("Everything", "f_string: 'unterminated"),
    ("Everything", "f_string: 'line\nbreak'"),
    ("Everything", "nope: 1"),
    ("Everything", "leaf { name: 'x'"),
    ("Everything", "payload { [type.googleapis.com/no.Such] { } }"),
    ("Everything", "f_bool: maybe"),
    ("Record", "name: 'n' [json2.tag]: 't' [json2.marks]: [1, 2] Extra { note: 'x' } level: LOW"),
    ("Record", "extra { note: 'lower-case group name' }"),
    ("Record", "level: 5"),
    ("Record", "[json2.nope]: 1"),
];

/// Our reading of `input` in `format`: what we write of it in that format and in binary, or
/// `None` when we reject it.
fn ours_parse(format: &str, name: &str, input: &str) -> Option<(String, String)> {
    fn go<M>(format: &str, input: &str) -> Option<(String, String)>
    where
        M: Message + Default + serde::Serialize + serde::de::DeserializeOwned + TextMessage,
    {
        let m: M = if format == "json" {
            json::from_str_with(input, &options()).ok()?
        } else {
            text::from_str_with(input, &text_options()).ok()?
        };
        let ours = if format == "json" {
            json::to_string_with(&m, &options()).expect("what we read, we write")
        } else {
            text::to_string_with(&m, &text_options())
        };
        Some((ours, hex(&m.encode_to_vec())))
    }
    match name {
        "Everything" => go::<Everything>(format, input),
        "Record" => go::<Record>(format, input),
        other => panic!("no message {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A line for the Python side: texts as JSON string literals, so they stay on one line.
fn line(format: &str, name: &str, input: Option<&str>, ours: &str, hexed: &str) -> String {
    let quote = |t: &str| serde_json::to_string(t).expect("a string");
    let input = input.map_or("-".to_owned(), quote);
    format!("{format}\t{name}\t{input}\t{}\t{hexed}\n", quote(ours))
}

/// Reads tab-separated `format message input ours ours_hex` lines (texts as JSON strings;
/// `-` for no input, `none` for what we rejected); prints `verdicts python_text`: whether
/// Python's reading of the input agrees with ours, whether Python reads our text as our binary
/// says, and Python's text of our message (a JSON string) for us to read back.
const SCRIPT: &str = r#"
import json, os, sys
from grpc_tools import protoc
from google.protobuf import json_format, text_format
out = sys.argv[1]
include = os.path.join(os.path.dirname(protoc.__file__), '_proto')
for spec in sys.argv[2:]:
    protos, file = spec.split(':')
    if protoc.main(['protoc', '-I' + protos, '-I' + include, '--python_out=' + out, file]) != 0:
        sys.exit('protoc failed on ' + file)
sys.path.insert(0, out)
import json3_pb2, json2_pb2
types = {'Everything': json3_pb2.Everything, 'Record': json2_pb2.Record}
def parse(fmt, name, text):
    m = types[name]()
    try:
        if fmt == 'json':
            json_format.Parse(text, m)
        else:
            text_format.Parse(text, m)
    except Exception as e:
        return None
    return m
def write(fmt, m):
    if fmt == 'json':
        return json_format.MessageToJson(m, indent=None)
    return text_format.MessageToString(m)
def parse_hex(name, hexed):
    m = types[name]()
    m.MergeFromString(bytes.fromhex('' if hexed == '-' else hexed))
    return m
for line in sys.stdin:
    fmt, name, given, ours_text, ours_hex = line.rstrip('\n').split('\t')
    verdicts = []
    if given != '-':
        theirs = parse(fmt, name, json.loads(given))
        if theirs is None:
            verdicts.append('both-reject' if ours_hex == 'none' else 'we-accept')
        elif ours_hex == 'none':
            verdicts.append('we-reject')
        else:
            verdicts.append('same' if theirs == parse_hex(name, ours_hex) else 'differ')
    if ours_hex == 'none':
        print(','.join(verdicts) + '\t-')
        continue
    ours = parse_hex(name, ours_hex)
    read = parse(fmt, name, json.loads(ours_text))
    verdicts.append('read-same' if read == ours else 'read-differ')
    print(','.join(verdicts) + '\t' + json.dumps(write(fmt, ours)))
"#;

/// A value: its JSON, text and binary forms for Python, and checks that we read Python's JSON
/// and text of it back as the value.
struct ValueCase {
    name: &'static str,
    json: String,
    text: String,
    hex: String,
    reads_back: ReadsBack,
}

/// Whether text in a format (`json` or `text`) reads as the value.
type ReadsBack = Box<dyn Fn(&str, &str) -> bool>;

impl ValueCase {
    fn new<M>(name: &'static str, value: M) -> Self
    where
        M: Message + Default + PartialEq + Clone + serde::Serialize + TextMessage + 'static,
        M: serde::de::DeserializeOwned,
    {
        ValueCase {
            name,
            json: json::to_string_with(&value, &options()).expect("write"),
            text: text::to_string_with(&value, &text_options()),
            hex: hex(&value.encode_to_vec()),
            reads_back: Box::new(move |format: &str, theirs: &str| {
                let read = if format == "json" {
                    json::from_str_with::<M>(theirs, &options()).ok()
                } else {
                    text::from_str_with::<M>(theirs, &text_options()).ok()
                };
                read.as_ref() == Some(&value)
            }),
        }
    }
}

#[test]
fn python_protobuf_agrees_with_our_json_and_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protos = root.join("protos");
    let out = std::env::temp_dir().join(format!("rust-rpc-formats-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");

    let values = [
        ValueCase::new("Everything", full()),
        ValueCase::new(
            "Everything",
            Everything {
                choice: Some(Choice::Nested(Box::new(Everything {
                    choice: Some(Choice::Text("deep".into())),
                    f_double: f64::INFINITY,
                    f_float: f32::NEG_INFINITY,
                    ..Default::default()
                }))),
                f_double: -0.0,
                ..Default::default()
            },
        ),
        ValueCase::new("Record", record()),
    ];
    // (line, the value whose read-back it checks, in which format)
    let mut lines: Vec<(String, Option<(usize, &str)>)> = Vec::new();
    for (i, case) in values.iter().enumerate() {
        for (format, ours) in [("json", &case.json), ("text", &case.text)] {
            lines.push((
                line(format, case.name, None, ours, &case.hex),
                Some((i, format)),
            ));
        }
    }
    for (format, inputs) in [("json", INPUTS), ("text", TEXT_INPUTS)] {
        for (name, input) in inputs {
            let (ours, hexed) =
                ours_parse(format, name, input).unwrap_or(("-".into(), "none".into()));
            lines.push((line(format, name, Some(input), &ours, &hexed), None));
        }
    }

    let mut child = Command::new(rust_rpc_testdata::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&out)
        .arg(format!("{}:json3.proto", protos.display()))
        .arg(format!("{}:json2.proto", protos.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        let all: String = lines.iter().map(|(l, _)| l.as_str()).collect();
        pipe.write_all(all.as_bytes()).expect("write cases");
    }
    let output = child.wait_with_output().expect("python output");
    std::fs::remove_dir_all(&out).ok();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answers: Vec<&str> = stdout.lines().collect();
    assert_eq!(answers.len(), lines.len(), "{stdout}");
    let mut failures = Vec::new();
    for ((line, check), answer) in lines.iter().zip(&answers) {
        let (verdicts, theirs) = answer.split_once('\t').expect("two fields");
        for verdict in verdicts.split(',') {
            if !matches!(verdict, "same" | "both-reject" | "read-same") {
                failures.push(format!("{verdict}: {}", line.trim_end()));
            }
        }
        if let Some((i, format)) = check {
            let theirs: String = serde_json::from_str(theirs).expect("a JSON string");
            if !(values[*i].reads_back)(format, &theirs) {
                failures.push(format!(
                    "we read Python's {format} {theirs:?} as another value"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The inputs are not all accepted or all rejected, or the test would not test much.
    for (format, inputs) in [("json", INPUTS), ("text", TEXT_INPUTS)] {
        let rejected = lines
            .iter()
            .zip(&answers)
            .filter(|((l, _), a)| l.starts_with(format) && a.starts_with("both-reject"))
            .count();
        let agreed = lines
            .iter()
            .zip(&answers)
            .filter(|((l, _), a)| l.starts_with(format) && a.starts_with("same,read-same"))
            .count();
        assert!(
            rejected >= 8 && agreed >= 8 && rejected + agreed == inputs.len(),
            "{format}: {rejected} rejected and {agreed} agreed of {}",
            inputs.len()
        );
    }
}

#[test]
fn messages_embed_in_a_program_s_own_serde_types() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Envelope {
        id: u32,
        leaf: Leaf,
        when: wkt::Timestamp,
    }
    let e = Envelope {
        id: 1,
        leaf: leaf("x"),
        when: wkt::Timestamp::default(),
    };
    let text = serde_json::to_string(&e).expect("write");
    assert_eq!(
        text,
        r#"{"id":1,"leaf":{"name":"x"},"when":"1970-01-01T00:00:00Z"}"#
    );
    assert_eq!(serde_json::from_str::<Envelope>(&text).expect("read"), e);
    assert_eq!(Everything::FULL_NAME, "json3.Everything");
}
