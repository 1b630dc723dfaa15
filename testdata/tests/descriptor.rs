//! The runtime's descriptor types (`rust_rpc::wkt`) read what protox and protoc write:
//! a descriptor set decodes and re-encodes to the same bytes as prost-types gives, and a
//! protoc with editions support hands over editions and features that prost-types 0.14 has
//! no fields for.

use std::path::PathBuf;
use std::process::Command;

use prost::Message as _;
use rust_rpc::wkt::{self, Edition, FileDescriptorSet};
use rust_rpc::Message;

fn protos() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos")
}

#[test]
fn a_protox_descriptor_set_round_trips_byte_for_byte() {
    let files = [
        "proto2.proto",
        "maps.proto",
        "oneofs.proto",
        "services.proto",
    ];
    let set = protox::compile(files, [protos()]).expect("protox compiles the golden cases");
    let bytes = set.encode_to_vec();
    let ours = FileDescriptorSet::decode(&bytes).expect("our types decode it");
    assert_eq!(Message::encode_to_vec(&ours), bytes);
    let names: Vec<&str> = ours.file.iter().map(|f| f.name()).collect();
    assert!(names.contains(&"proto2.proto"), "{names:?}");
    let proto2 = ours
        .file
        .iter()
        .find(|f| f.name() == "proto2.proto")
        .expect("proto2.proto");
    // protox leaves `syntax` unset for proto2, its default.
    assert_eq!(proto2.syntax(), "");
    let defaults = &proto2.message_type[0];
    assert_eq!(defaults.name(), "Defaults");
    let retries = &defaults.field[2];
    assert_eq!(retries.name(), "retries");
    assert_eq!(retries.default_value(), "3");
    assert_eq!(
        retries.label(),
        wkt::field_descriptor_proto::Label::OPTIONAL
    );
    // Source info comes through too (paths and spans of every element).
    assert!(proto2.source_code_info.is_some());
}

#[test]
fn protoc_hands_over_editions_and_features() {
    let dir = std::env::temp_dir().join(format!("rust-rpc-editions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("ed.proto"),
        r#"edition = "2023";
package ed;
option features.field_presence = IMPLICIT;
enum Kind {
  option features.enum_type = CLOSED;
  KIND_A = 0;
  KIND_B = 1;
}
message M {
  string s = 1 [features.utf8_validation = NONE];
  repeated int32 r = 2 [features.repeated_field_encoding = EXPANDED];
  Kind k = 3 [features.field_presence = EXPLICIT];
  M child = 4 [features.message_encoding = DELIMITED];
}
"#,
    )
    .expect("write ed.proto");
    let out = dir.join("set.bin");
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    let status = Command::new(protoc)
        .arg(format!("-I{}", dir.display()))
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("ed.proto")
        .status()
        .expect("run protoc");
    assert!(status.success());
    let bytes = std::fs::read(&out).expect("descriptor set");
    std::fs::remove_dir_all(&dir).ok();

    let set = FileDescriptorSet::decode(&bytes).expect("our types decode protoc's set");
    assert_eq!(Message::encode_to_vec(&set), bytes, "nothing lost");
    let file = &set.file[0];
    assert_eq!(file.syntax(), "editions");
    assert_eq!(file.edition(), Edition::EDITION_2023);
    let features = file
        .options
        .as_ref()
        .and_then(|o| o.features.as_ref())
        .expect("file features");
    assert_eq!(
        features.field_presence(),
        wkt::feature_set::FieldPresence::IMPLICIT
    );
    let kind = &file.enum_type[0];
    let enum_features = kind.options.as_ref().and_then(|o| o.features.as_ref());
    assert_eq!(
        enum_features.map(|f| f.enum_type()),
        Some(wkt::feature_set::EnumType::CLOSED)
    );
    let m = &file.message_type[0];
    let field_features = |i: usize| {
        m.field[i]
            .options
            .as_ref()
            .and_then(|o| o.features.clone())
            .expect("field features")
    };
    assert_eq!(
        field_features(0).utf8_validation(),
        wkt::feature_set::Utf8Validation::NONE
    );
    assert_eq!(
        field_features(1).repeated_field_encoding(),
        wkt::feature_set::RepeatedFieldEncoding::EXPANDED
    );
    assert_eq!(
        field_features(3).message_encoding(),
        wkt::feature_set::MessageEncoding::DELIMITED
    );
    // prost-types 0.14 decodes the same bytes but keeps none of this.
    let theirs = prost_types::FileDescriptorSet::decode(bytes.as_slice()).expect("prost decodes");
    assert_ne!(theirs.encode_to_vec(), bytes);
}

#[test]
fn a_plugin_request_round_trips() {
    use rust_rpc::wkt::compiler::{code_generator_response, CodeGeneratorRequest};
    let set = protox::compile(["services.proto"], [protos()]).expect("protox");
    let request = CodeGeneratorRequest {
        file_to_generate: vec!["services.proto".into()],
        parameter: Some("client=false".into()),
        proto_file: FileDescriptorSet::decode(&set.encode_to_vec())
            .expect("decode")
            .file,
        ..Default::default()
    };
    let bytes = Message::encode_to_vec(&request);
    let back = CodeGeneratorRequest::decode(&bytes).expect("decode the request");
    assert_eq!(back, request);
    assert_eq!(back.parameter(), "client=false");
    assert_eq!(
        code_generator_response::Feature::SUPPORTS_EDITIONS.0,
        2,
        "the plugin protocol's editions flag"
    );
}

#[test]
fn messages_hold_descriptor_types() {
    use rust_rpc_testdata::ours::descriptor_fields::Schema;
    let set = protox::compile(["maps.proto"], [protos()]).expect("protox");
    let schema = Schema {
        set: Some(FileDescriptorSet::decode(&set.encode_to_vec()).expect("decode")),
        edition: Some(Edition::EDITION_2024),
        types: vec![wkt::field_descriptor_proto::Type::STRING],
        ..Default::default()
    };
    let back = Schema::decode(&Message::encode_to_vec(&schema)).expect("decode");
    assert_eq!(back, schema);
}
