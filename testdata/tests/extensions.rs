//! Extensions through their typed identifiers: set, read back, cleared, merged as the spec
//! says, kept on the wire form so unknown ones round-trip, agreed with Python's protobuf, and a
//! custom option read from the descriptors protox makes.

use std::process::Command;

use rust_rpc::wkt::FileDescriptorSet;
use rust_rpc::{Extendable, Message};
use rust_rpc_testdata::ours::extensions::{self, scope, Base, Color, Note};

fn base() -> Base {
    Base {
        id: Some(1),
        ..Default::default()
    }
}

/// A `Base` with every extension set, `count` to `count` and `ids` to `ids`.
fn filled(count: i32, ids: Vec<i32>) -> Base {
    let mut msg = base();
    msg.set_extension(&extensions::COUNT, Some(count));
    msg.set_extension(&extensions::LABEL, Some("é".to_owned()));
    msg.set_extension(&extensions::COLOR, Some(Color::BLUE));
    msg.set_extension(
        &extensions::NOTE,
        Some(Note {
            text: Some("n".into()),
            ..Default::default()
        }),
    );
    msg.set_extension(&extensions::IDS, ids);
    msg.set_extension(&extensions::TAGS, vec!["a".into(), "b".into()]);
    msg.set_extension(&scope::FLAG, Some(true));
    msg.set_extension(
        &extensions::LEGACY,
        Some(extensions::Legacy {
            x: Some(count),
            ..Default::default()
        }),
    );
    msg
}

#[test]
fn every_kind_of_value_sets_reads_and_clears() {
    let msg = base();
    assert_eq!(msg.extension(&extensions::COUNT).unwrap(), None);
    assert!(!msg.has_extension(&extensions::COUNT));
    let msg = filled(42, vec![1, 2, 300]);

    let back = Base::decode(&msg.encode_to_vec()).expect("decode");
    assert_eq!(back.extension(&extensions::COUNT).unwrap(), Some(42));
    assert_eq!(
        back.extension(&extensions::LABEL).unwrap().as_deref(),
        Some("é")
    );
    assert_eq!(
        back.extension(&extensions::COLOR).unwrap(),
        Some(Color::BLUE)
    );
    assert_eq!(
        back.extension(&extensions::NOTE)
            .unwrap()
            .and_then(|n| n.text),
        Some("n".to_owned())
    );
    assert_eq!(back.extension(&extensions::IDS).unwrap(), [1, 2, 300]);
    assert_eq!(back.extension(&extensions::TAGS).unwrap(), ["a", "b"]);
    assert_eq!(back.extension(&scope::FLAG).unwrap(), Some(true));
    assert!(back.has_extension(&extensions::IDS));

    // Setting replaces; clearing removes only that extension.
    let mut msg = back;
    msg.set_extension(&extensions::COUNT, Some(7));
    assert_eq!(msg.extension(&extensions::COUNT).unwrap(), Some(7));
    msg.clear_extension(&extensions::COUNT);
    assert_eq!(msg.extension(&extensions::COUNT).unwrap(), None);
    assert_eq!(msg.extension(&extensions::IDS).unwrap(), [1, 2, 300]);
    msg.set_extension(&extensions::IDS, Vec::new());
    assert!(!msg.has_extension(&extensions::IDS));
    // Packed, as declared: one key for the run.
    let mut packed = base();
    packed.set_extension(&extensions::IDS, vec![1, 2]);
    assert_eq!(
        packed.unknown_fields.as_bytes(),
        [0xc2, 0x06, 0x02, 0x01, 0x02]
    );
}

#[test]
fn a_group_extension_is_a_group_on_the_wire() {
    let mut msg = Base::default();
    let legacy = extensions::Legacy {
        x: Some(5),
        ..Default::default()
    };
    msg.set_extension(&extensions::LEGACY, Some(legacy.clone()));
    // Start-group key of 106 (851), x = 5, end-group key (852).
    assert_eq!(msg.encode_to_vec(), [0xd3, 0x06, 0x08, 0x05, 0xd4, 0x06]);
    let back = Base::decode(&msg.encode_to_vec()).expect("decode");
    assert_eq!(back.extension(&extensions::LEGACY).unwrap(), Some(legacy));
    assert!(back.has_extension(&extensions::LEGACY));
    // An end-group key of another number is malformed.
    assert!(Base::decode(&[0xd3, 0x06, 0x08, 0x05, 0xdc, 0x06]).is_err());
}

#[test]
fn values_on_the_wire_follow_the_spec() {
    // Singular: the last value wins. Messages merge. Repeated: packed and unpacked both read.
    let bytes = [
        0xa0, 0x06, 0x01, // count = 1
        0xa0, 0x06, 0x05, // count = 5
        0xba, 0x06, 0x03, 0x0a, 0x01, b'x', // note { text: "x" }
        0xa0, 0x06, 0x09, // count = 9
        0xc0, 0x06, 0x03, // ids: 3 (unpacked)
        0xc2, 0x06, 0x02, 0x04, 0x05, // ids: 4, 5 (packed)
        0xb0, 0x06, 0x09, // color = 9: not declared, so not a value of the closed enum
        0xb0, 0x06, 0x01, // color = RED
        0xb0, 0x06, 0x07, // color = 7: ignored, RED stays
    ];
    let msg = Base::decode(&bytes).expect("decode");
    assert_eq!(msg.extension(&extensions::COUNT).unwrap(), Some(9));
    assert_eq!(msg.extension(&extensions::IDS).unwrap(), [3, 4, 5]);
    assert_eq!(msg.extension(&extensions::COLOR).unwrap(), Some(Color::RED));
    assert_eq!(
        msg.extension(&extensions::NOTE)
            .unwrap()
            .and_then(|n| n.text),
        Some("x".to_owned())
    );
    // Everything is still there, byte for byte, for a program that does not know them.
    assert_eq!(msg.encode_to_vec(), bytes);
    // A value another definition wrote (a string under COUNT's number) is no value of it:
    // a wire type it cannot have is skipped, as any field's.
    let odd = Base::decode(&[0xa2, 0x06, 0x01, b'z']).expect("decode");
    assert_eq!(odd.extension(&extensions::COUNT).unwrap(), None);
    assert!(!odd.has_extension(&extensions::COUNT));
}

#[test]
fn a_custom_option_is_read_from_the_descriptors() {
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protos");
    // What the compiler reads: protox's encoding, options' extensions included (prost-types,
    // which has no place for them, would drop them).
    let (set, _): (FileDescriptorSet, _) =
        rust_rpc_compiler::parse_protos(&["extensions.proto"], &[&protos]).expect("parse");
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "extensions.proto")
        .expect("the file");
    let row = file
        .message_type
        .iter()
        .find(|m| m.name() == "Row")
        .expect("Row");
    let options = row.field[0].options.as_ref().expect("field options");
    assert_eq!(
        options.extension(&extensions::COLUMN).unwrap().as_deref(),
        Some("row_id")
    );
}

/// Python's protobuf reads the extensions we write as the same values, and writes back the
/// same bytes.
#[test]
fn python_reads_our_extensions() {
    let msg = filled(-3, vec![1, 300]);
    let hexed: String = msg
        .encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protos");
    let out = std::env::temp_dir().join(format!("rust-rpc-ext-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let script = r#"
import os, sys
from grpc_tools import protoc
protos, out, hexed = sys.argv[1:4]
include = os.path.join(os.path.dirname(protoc.__file__), '_proto')
if protoc.main(['protoc', '-I' + protos, '-I' + include, '--python_out=' + out, 'extensions.proto']) != 0:
    sys.exit('protoc failed')
sys.path.insert(0, out)
import extensions_pb2 as e
m = e.Base()
m.ParseFromString(bytes.fromhex(hexed))
print(m.Extensions[e.count], m.Extensions[e.label], m.Extensions[e.color],
      m.Extensions[e.note].text, list(m.Extensions[e.ids]), list(m.Extensions[e.tags]),
      m.Extensions[e.Scope.flag], m.Extensions[e.legacy].x)
print(m.SerializeToString().hex())
"#;
    let output = Command::new(rust_rpc_testdata::python())
        .args(["-c", script])
        .arg(&protos)
        .arg(&out)
        .arg(&hexed)
        .output()
        .expect("run python");
    std::fs::remove_dir_all(&out).ok();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "-3 é 2 n [1, 300] ['a', 'b'] True -3");
    assert_eq!(lines[1], hexed, "Python writes back other bytes");
}
