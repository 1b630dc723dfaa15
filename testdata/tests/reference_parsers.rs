//! Decoding as lenient as protobuf's reference parsers: the same bytes go through our code
//! and through Python's protobuf (upb), and both must agree, for proto2, proto3 and edition
//! 2023 (whose features: presence, closed enums, expanded and packed fields, UTF-8 checks,
//! delimited messages, decide the same things). A known field that arrives with
//! another wire type, a number a closed enum does not declare, and a proto2 string that is
//! not UTF-8 are kept with the unknown fields and written back; an open enum keeps any number;
//! a proto3 string that is not UTF-8 fails on both sides.
//!
//! For each input, Python parses it and re-encodes it (`P(input)`), and parses our re-encoding
//! and re-encodes that (`P(ours)`): the two must be equal, so our output says what the input
//! said. Where the input is in the order both sides write (known fields by number, then
//! unknown ones), our bytes must also equal Python's.

use std::path::Path;
use std::process::Command;

use rust_rpc::Message;
use rust_rpc_testdata::ours::editions::Everything;
use rust_rpc_testdata::ours::lenient::leniency::closed::{self, Closed, Required, E2};
use rust_rpc_testdata::ours::lenient::leniency::open::{Color, Typed};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Hex, with `-` for no bytes (so a line of the Python exchange keeps its three fields).
fn to_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode<M: Message + Default>(bytes: &[u8]) -> M {
    M::decode(bytes).unwrap_or_else(|e| panic!("we reject {}: {e}", to_hex(bytes)))
}

// The cases of the issue, field by field.

#[test]
fn a_known_field_with_another_wire_type_is_kept() {
    // Field 6 is a string; a varint there is kept, as is the rest of the message.
    let m: Closed = decode(&hex("30 05 10 01"));
    assert_eq!(m.name, None);
    assert_eq!(m.e, Some(E2::E_ONE));
    assert_eq!(m.unknown_fields.as_bytes(), hex("30 05"));
    assert_eq!(m.encode_to_vec(), hex("10 01 30 05"));
    // A group sent length-delimited.
    let m: Closed = decode(&hex("2a 02 30 01"));
    assert_eq!(m.g, None);
    assert_eq!(m.unknown_fields.as_bytes(), hex("2a 02 30 01"));
    // In proto3 too, for every wire type and in a nested message.
    let m: Typed = decode(&hex("32 02 18 01 0d 01 00 00 00"));
    let child = m.child.as_deref().expect("child");
    assert_eq!(child.text, "");
    assert_eq!(child.unknown_fields.as_bytes(), hex("18 01"));
    assert_eq!(m.varint, 0);
    assert_eq!(m.unknown_fields.as_bytes(), hex("0d 01 00 00 00"));
}

#[test]
fn a_proto2_string_that_is_not_utf8_is_kept() {
    let m: Closed = decode(&hex("52 01 ff"));
    assert_eq!(m.s, None);
    assert_eq!(m.encode_to_vec(), hex("52 01 ff"));
    // In proto3 it is an error.
    assert!(Typed::decode(&hex("1a 01 ff")).is_err());
}

#[test]
fn the_last_value_of_a_proto2_string_wins_whether_or_not_it_is_utf8() {
    let m: Closed = decode(&hex("52 01 61 52 01 ff"));
    assert_eq!(
        m.s, None,
        "the field's value is the one a String cannot hold"
    );
    assert_eq!(m.encode_to_vec(), hex("52 01 ff"));
    let m: Closed = decode(&hex("52 01 ff 52 01 61"));
    assert_eq!(m.s.as_deref(), Some("a"));
    assert!(m.unknown_fields.is_empty(), "the replaced value is gone");
    // In a oneof, a later member replaces it too.
    let m: Closed = decode(&hex("72 01 ff 68 01"));
    assert_eq!(m.choice, Some(closed::closed::Choice::Oe(E2::E_ONE)));
    assert!(m.unknown_fields.is_empty());
    // A value the program sets replaces the kept bytes too.
    let mut m: Closed = decode(&hex("52 01 ff"));
    m.s = Some("new".into());
    assert_eq!(m.encode_to_vec(), hex("52 03 6e 65 77"));
    assert_eq!(
        Closed::decode(&m.encode_to_vec()).unwrap().s.as_deref(),
        Some("new")
    );
    let mut m: Closed = decode(&hex("72 01 ff"));
    m.choice = Some(closed::closed::Choice::Oe(E2::E_TWO));
    assert_eq!(m.encode_to_vec(), hex("68 02"));
    // So does a map key the program sets.
    let mut m: Closed = decode(&hex(
        "82 01 06 0a 01 6b 12 01 76 82 01 06 0a 01 6b 12 01 ff",
    ));
    assert!(m.sm.is_empty());
    m.sm.insert("k".into(), "new".into());
    assert_eq!(
        m.encode_to_vec(),
        hex("82 01 08 0a 01 6b 12 03 6e 65 77"),
        "the kept entry of `k` is stale"
    );
    // A repeated field keeps every element, but one that is not UTF-8 is written back after
    // the others: the one place where our order differs from the input's.
    let m: Closed = decode(&hex("7a 01 61 7a 01 ff 7a 01 62"));
    assert_eq!(m.rs, ["a", "b"]);
    assert_eq!(m.encode_to_vec(), hex("7a 01 61 7a 01 62 7a 01 ff"));
}

#[test]
fn a_closed_enum_keeps_undeclared_numbers_out_of_the_field() {
    let m: Closed = decode(&hex("10 01 10 05"));
    assert_eq!(m.e, Some(E2::E_ONE));
    assert_eq!(m.unknown_fields.as_bytes(), hex("10 05"));
    assert_eq!(m.encode_to_vec(), hex("10 01 10 05"));

    let m: Closed = decode(&hex("22 03 01 05 02"));
    assert_eq!(m.pe, [E2::E_ONE, E2::E_TWO]);
    assert_eq!(m.unknown_fields.as_bytes(), hex("20 05"));

    let m: Closed = decode(&hex("68 05"));
    assert_eq!(m.choice, None);
    let m: Closed = decode(&hex("68 02"));
    assert_eq!(m.choice, Some(closed::closed::Choice::Oe(E2::E_TWO)));

    // A map entry whose value is undeclared stays whole in the unknown fields.
    let m: Closed = decode(&hex("62 04 08 01 10 05"));
    assert!(m.em.is_empty());
    assert_eq!(m.unknown_fields.as_bytes(), hex("62 04 08 01 10 05"));

    // An open enum, even in a proto2 message, keeps the number.
    let m: Closed = decode(&hex("88 01 07"));
    assert_eq!(m.open_color, Some(Color::from(7)));
    assert!(m.unknown_fields.is_empty());
}

// The same and the kinds around them, against Python.

/// (message, input, whether our bytes must equal Python's).
const CASES: &[(&str, &str, bool)] = &[
    // Wire types that are not the field's.
    ("Closed", "30 05", true),
    ("Closed", "2a 02 30 01", true),
    ("Closed", "25 01 00 00 00", true),
    ("Typed", "0d 01 00 00 00", true),
    ("Typed", "10 05", true),
    ("Typed", "18 01", true),
    ("Typed", "22 00", true),
    ("Typed", "2d 01 00 00 00", true),
    ("Typed", "30 01", true),
    ("Typed", "3b 3c", true),
    ("Typed", "40 01", true),
    ("Typed", "32 02 18 01", true),
    ("Typed", "3a 04 08 01 10 02", false),
    ("Typed", "08 01 18 01 08 02", false),
    // UTF-8.
    ("Closed", "52 01 ff", true),
    // The last value of a singular field wins, representable or not.
    ("Closed", "52 01 61 52 01 ff", true),
    ("Closed", "52 01 ff 52 01 61", true),
    ("Closed", "52 01 ff 52 01 fe 52 01 61", true),
    ("Closed", "72 01 ff 68 01", true),
    ("Closed", "68 01 72 01 ff", true),
    ("Closed", "72 01 61 72 01 ff 72 01 62", true),
    ("Closed", "92 01 03 52 01 ff 92 01 03 52 01 61", true),
    // And the last entry of a map key.
    (
        "Closed",
        "82 01 06 0a 01 61 12 01 ff 82 01 06 0a 01 61 12 01 62",
        true,
    ),
    (
        "Closed",
        "82 01 06 0a 01 61 12 01 62 82 01 06 0a 01 61 12 01 ff",
        true,
    ),
    // A map entry with a refused value is kept whole, even if a later value would do (upb
    // writes it back re-encoded, we as it came).
    ("Closed", "62 06 08 01 10 05 10 01", false),
    ("Closed", "62 06 08 01 10 01 10 05", false),
    ("Closed", "72 01 ff", true),
    ("Closed", "7a 01 61 7a 01 ff", true),
    ("Closed", "82 01 06 0a 01 ff 12 01 61", true),
    ("Closed", "82 01 06 0a 01 61 12 01 ff", true),
    ("Closed", "92 01 03 52 01 ff", true),
    ("Typed", "1a 01 ff", true),
    ("Typed", "42 01 ff", true),
    // Closed and open enums.
    ("Closed", "10 01 10 05", true),
    ("Closed", "22 03 01 05 02", true),
    ("Closed", "58 05 58 01", false),
    ("Closed", "5a 03 01 05 02", false),
    ("Closed", "62 04 08 01 10 05", true),
    ("Closed", "62 04 08 01 10 02", true),
    ("Closed", "68 05", true),
    ("Closed", "68 01", true),
    ("Closed", "88 01 07", true),
    ("Closed", "92 01 02 10 05", true),
    ("Closed", "10 05 30 05 52 01 ff 10 01 22 02 07 01", false),
    ("Typed", "50 07", true),
    ("Typed", "5a 02 01 07", true),
    // Required fields keep presence: one of two set re-encodes to the same bytes.
    ("Required", "12 01 61", true),
    ("Required", "08 05 12 01 61", true),
    ("Required", "08 01 12 01 ff", true),
    ("Required", "08 00", true),
    // Edition 2023, every feature that shapes the code (testdata/protos_protoc/editions.proto).
    ("Everything", "08 00", true),
    ("Everything", "10 00", true),
    ("Everything", "20 01 20 02", true),
    ("Everything", "2a 02 01 02", true),
    ("Everything", "32 01 ff", true),
    ("Everything", "3a 01 ff", true),
    ("Everything", "3a 01 ff 3a 01 61", true),
    ("Everything", "43 08 01 44", true),
    ("Everything", "42 02 08 01", true),
    ("Everything", "4b 08 01 4c", true),
    ("Everything", "50 07", true),
    ("Everything", "58 05", true),
    ("Everything", "58 01", true),
    ("Everything", "62 03 01 05 00", true),
    ("Everything", "73 08 01 74", true),
    ("Everything", "72 02 08 01", true),
    (
        "Everything",
        "1a 01 61 08 05 2a 01 03 43 08 02 44 58 01",
        false,
    ),
];

/// Our re-encoding of `input` as `message`, or `None` where we reject it.
fn ours(message: &str, input: &[u8]) -> Option<Vec<u8>> {
    fn round<M: Message + Default>(input: &[u8]) -> Option<Vec<u8>> {
        M::decode(input).ok().map(|m| m.encode_to_vec())
    }
    match message {
        "Closed" => round::<Closed>(input),
        "Required" => round::<Required>(input),
        "Typed" => round::<Typed>(input),
        "Everything" => round::<Everything>(input),
        other => panic!("no message {other}"),
    }
}

/// Reads `message input ours` lines; prints `P(input) P(ours)`, each `error` where Python
/// rejects the bytes. `MergeFromString` and `SerializePartialToString` leave required fields
/// unchecked, as our decoding does. Arguments: the output directory, then `dir:file.proto`
/// for each schema.
const SCRIPT: &str = r#"
import importlib, os, sys
from grpc_tools import protoc
out = sys.argv[1]
include = os.path.join(os.path.dirname(protoc.__file__), '_proto')
for spec in sys.argv[2:]:
    protos, file = spec.split(':')
    if protoc.main(['protoc', '-I' + protos, '-I' + include, '--python_out=' + out, file]) != 0:
        sys.exit('protoc failed on ' + file)
sys.path.insert(0, out)
import open_pb2, closed_pb2, editions_pb2
types = {'Typed': open_pb2.Typed, 'Closed': closed_pb2.Closed, 'Required': closed_pb2.Required,
         'Everything': editions_pb2.Everything}
def again(name, hexed):
    if hexed == 'none':
        return 'error'
    m = types[name]()
    try:
        m.MergeFromString(bytes.fromhex('' if hexed == '-' else hexed))
    except Exception:
        return 'error'
    return m.SerializePartialToString().hex() or '-'
for line in sys.stdin:
    name, given, ours = line.split()
    print(again(name, given), again(name, ours))
"#;

#[test]
fn python_protobuf_reads_what_we_write_as_what_it_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let leniency = root.join("protos/leniency");
    let protoc_only = root.join("protos_protoc");
    let out = std::env::temp_dir().join(format!("rust-rpc-reference-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let mut stdin = String::new();
    let mut ours_all = Vec::new();
    for (message, input, _) in CASES {
        let input = hex(input);
        let ours = ours(message, &input);
        let ours_hex = ours.as_deref().map_or("none".to_owned(), to_hex);
        stdin.push_str(&format!("{message} {} {ours_hex}\n", to_hex(&input)));
        ours_all.push(ours_hex);
    }
    let mut child = Command::new(rust_rpc_testdata::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&out)
        .arg(format!("{}:open.proto", leniency.display()))
        .arg(format!("{}:closed.proto", leniency.display()))
        .arg(format!("{}:editions.proto", protoc_only.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(stdin.as_bytes()).expect("write cases");
    }
    let output = child.wait_with_output().expect("python output");
    std::fs::remove_dir_all(&out).ok();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), CASES.len(), "{stdout}");
    for (((message, input, exact), ours), line) in CASES.iter().zip(&ours_all).zip(lines) {
        let (theirs, theirs_of_ours) = line.split_once(' ').expect("two fields");
        if theirs == "error" {
            assert_eq!(ours, "none", "{message} {input}: Python rejects, we accept");
            continue;
        }
        assert_ne!(ours, "none", "{message} {input}: we reject, Python accepts");
        assert_eq!(
            theirs_of_ours, theirs,
            "{message} {input}: Python reads our {ours} as another message"
        );
        if *exact {
            assert_eq!(
                ours, theirs,
                "{message} {input}: bytes differ from Python's"
            );
        }
    }
}
