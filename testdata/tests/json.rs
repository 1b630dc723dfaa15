//! Protobuf's JSON mapping (`json` option, runtime feature `json`), checked against Python's
//! protobuf (`json_format`, upb) as the reference: for each value, Python must read our JSON
//! as the message our binary encoding says, and we must read Python's JSON back as the value;
//! for each JSON text, both sides must accept or both reject it, and agree on the message.
//! The forms the spec fixes (64-bit integers as strings, enum names, base64, the well-known
//! types' texts, field names) are asserted directly.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rust_rpc::json::{self, JsonOptions, TypeRegistry};
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

fn ours_parse(name: &str, text: &str) -> Option<(String, String)> {
    fn go<M>(text: &str) -> Option<(String, String)>
    where
        M: Message + Default + serde::Serialize + serde::de::DeserializeOwned,
    {
        let m: M = json::from_str_with(text, &options()).ok()?;
        let ours = json::to_string_with(&m, &options()).expect("what we read, we write");
        Some((ours, hex(&m.encode_to_vec())))
    }
    match name {
        "Everything" => go::<Everything>(text),
        "Record" => go::<Record>(text),
        other => panic!("no message {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads tab-separated `message input ours_json ours_hex` lines (`-` for no input, `none` for
/// what we rejected); prints `verdict python_json`: whether Python's reading of the input
/// agrees with ours, whether Python reads our JSON as our binary says, and Python's JSON of
/// our message for us to read back.
const SCRIPT: &str = r#"
import os, sys
from grpc_tools import protoc
from google.protobuf import json_format
out = sys.argv[1]
include = os.path.join(os.path.dirname(protoc.__file__), '_proto')
for spec in sys.argv[2:]:
    protos, file = spec.split(':')
    if protoc.main(['protoc', '-I' + protos, '-I' + include, '--python_out=' + out, file]) != 0:
        sys.exit('protoc failed on ' + file)
sys.path.insert(0, out)
import json3_pb2, json2_pb2
types = {'Everything': json3_pb2.Everything, 'Record': json2_pb2.Record}
def parse_json(name, text):
    m = types[name]()
    try:
        json_format.Parse(text, m)
    except Exception as e:
        return None
    return m
def parse_hex(name, hexed):
    m = types[name]()
    m.MergeFromString(bytes.fromhex('' if hexed == '-' else hexed))
    return m
for line in sys.stdin:
    name, given, ours_json, ours_hex = line.rstrip('\n').split('\t')
    verdicts = []
    if given != '-':
        theirs = parse_json(name, given)
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
    read = parse_json(name, ours_json)
    verdicts.append('json-same' if read == ours else 'json-differ')
    print(','.join(verdicts) + '\t' + json_format.MessageToJson(ours, indent=None))
"#;

/// A value: its JSON and binary forms for Python, and a check that we read Python's JSON of it
/// back as the value.
struct ValueCase {
    name: &'static str,
    text: String,
    hex: String,
    reads_back: Box<dyn Fn(&str) -> bool>,
}

impl ValueCase {
    fn new<M>(name: &'static str, value: M) -> Self
    where
        M: Message + Default + PartialEq + Clone + serde::Serialize + 'static,
        M: serde::de::DeserializeOwned,
    {
        ValueCase {
            name,
            text: json::to_string_with(&value, &options()).expect("write"),
            hex: hex(&value.encode_to_vec()),
            reads_back: Box::new(move |theirs: &str| {
                json::from_str_with::<M>(theirs, &options()).ok().as_ref() == Some(&value)
            }),
        }
    }
}

#[test]
fn python_protobuf_agrees_with_our_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protos = root.join("protos");
    let out = std::env::temp_dir().join(format!("rust-rpc-json-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");

    let mut lines = Vec::new();
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
    for case in &values {
        lines.push(format!("{}\t-\t{}\t{}\n", case.name, case.text, case.hex));
    }
    for (name, input) in INPUTS {
        let (text, hexed) = ours_parse(name, input).unwrap_or(("-".into(), "none".into()));
        lines.push(format!("{name}\t{input}\t{text}\t{hexed}\n"));
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
        pipe.write_all(lines.concat().as_bytes())
            .expect("write cases");
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
    for (i, (line, answer)) in lines.iter().zip(&answers).enumerate() {
        let (verdicts, theirs) = answer.split_once('\t').expect("two fields");
        for verdict in verdicts.split(',') {
            if !matches!(verdict, "same" | "both-reject" | "json-same") {
                failures.push(format!("{verdict}: {}", line.trim_end()));
            }
        }
        if let Some(case) = values.get(i) {
            if !(case.reads_back)(theirs) {
                failures.push(format!("we read Python's {theirs} as another value"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The inputs are not all accepted or all rejected, or the test would not test much.
    let rejected = answers
        .iter()
        .filter(|a| a.starts_with("both-reject"))
        .count();
    assert!(
        rejected >= 10 && rejected < INPUTS.len() - 10,
        "{rejected} rejected"
    );
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
