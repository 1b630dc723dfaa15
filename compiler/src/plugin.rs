//! The protoc plugin protocol: a `CodeGeneratorRequest` in, a `CodeGeneratorResponse` out.
//! `protoc-gen-rust-rpc` is a thin binary over [`run`].

use rust_rpc::wkt::compiler::code_generator_response::{Feature, File};
use rust_rpc::wkt::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};
use rust_rpc::wkt::{Edition, FileDescriptorSet};
use rust_rpc::Message as _;

use crate::features::SUPPORTED_EDITIONS;
use crate::{generate, Config};

/// What the plugin tells protoc it handles: proto3 `optional`, and editions files (protoc
/// passes those only to a plugin that says so, with the range of editions it knows).
const SUPPORTED_FEATURES: u64 =
    Feature::PROTO3_OPTIONAL.0 as u64 | Feature::SUPPORTS_EDITIONS.0 as u64;

/// The newest edition whose feature defaults `lower` knows.
const MAXIMUM_EDITION: Edition = SUPPORTED_EDITIONS[SUPPORTED_EDITIONS.len() - 1];

/// Answers an encoded request with an encoded response. Problems with the request or the
/// schema go into the response's `error`, as protoc expects; warnings go to stderr, which
/// protoc shows.
pub fn run(request: &[u8]) -> Vec<u8> {
    let response = match CodeGeneratorRequest::decode(request) {
        Ok(request) => respond(request),
        Err(e) => error_response(format!("cannot decode the CodeGeneratorRequest: {e}")),
    };
    response.encode_to_vec()
}

/// Generates the files protoc asked for.
pub fn respond(request: CodeGeneratorRequest) -> CodeGeneratorResponse {
    let config = match Config::from_parameter(request.parameter()) {
        Ok(config) => config,
        Err(e) => return error_response(e.to_string()),
    };
    let set = FileDescriptorSet {
        file: request.proto_file,
        ..Default::default()
    };
    match generate(&set, &request.file_to_generate, &config) {
        Ok(output) => {
            for warning in &output.warnings {
                eprintln!("{warning}");
            }
            CodeGeneratorResponse {
                supported_features: Some(SUPPORTED_FEATURES),
                minimum_edition: Some(Edition::PROTO2.0),
                maximum_edition: Some(MAXIMUM_EDITION.0),
                file: output
                    .files
                    .into_iter()
                    .map(|f| File {
                        name: Some(f.name),
                        content: Some(f.content),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
        Err(e) => error_response(e.to_string()),
    }
}

fn error_response(message: String) -> CodeGeneratorResponse {
    CodeGeneratorResponse {
        error: Some(message),
        supported_features: Some(SUPPORTED_FEATURES),
        minimum_edition: Some(Edition::PROTO2.0),
        maximum_edition: Some(MAXIMUM_EDITION.0),
        ..Default::default()
    }
}

/// What the plugin prints when run by hand.
pub const USAGE: &str = "\
protoc-gen-rust-rpc: the rust-rpc code generator as a protoc plugin.

protoc runs it; it reads a CodeGeneratorRequest on stdin and writes a CodeGeneratorResponse
on stdout. Use it as:

    protoc --plugin=protoc-gen-rust-rpc=PATH --rust-rpc_out=OUT_DIR -I proto proto/x.proto
    protoc ... --rust-rpc_opt=map_type=btree,unknown_fields=discard

Options (--rust-rpc_opt, comma-separated, `name=value` or a bare `name`):
";
