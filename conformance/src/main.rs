//! The conformance testee: reads length-prefixed `ConformanceRequest`s on stdin and answers
//! each with a `ConformanceResponse` on stdout. Binary in, binary out; other formats are
//! answered `skipped`. Nothing else may be written to stdout.

use std::io::{self, Read, Write};
use std::process::ExitCode;

// A binary uses only part of the generated API; the rest is not dead, just unused here.
#[cfg(conformance_protos)]
#[allow(dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_include.rs"));
}

fn main() -> ExitCode {
    match serve(io::stdin().lock(), io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance testee: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Answers requests until stdin ends.
fn serve(mut input: impl Read, mut output: impl Write) -> io::Result<()> {
    loop {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut request = vec![0u8; u32::from_le_bytes(len) as usize];
        input.read_exact(&mut request)?;
        let response = respond(&request);
        output.write_all(&(response.len() as u32).to_le_bytes())?;
        output.write_all(&response)?;
        output.flush()?;
    }
}

#[cfg(conformance_protos)]
fn respond(request: &[u8]) -> Vec<u8> {
    use generated::conformance::{
        conformance_request, conformance_response, ConformanceRequest, ConformanceResponse,
        FailureSet, WireFormat,
    };
    use generated::protobuf_test_messages::{
        proto2::TestAllTypesProto2, proto3::TestAllTypesProto3,
    };
    use rust_rpc::{Message, Name};

    fn round_trip<M: Message + Default>(payload: &[u8]) -> conformance_response::Result {
        match M::decode(payload) {
            Ok(msg) => conformance_response::Result::ProtobufPayload(msg.encode_to_vec()),
            Err(e) => conformance_response::Result::ParseError(e.to_string()),
        }
    }

    let result = match ConformanceRequest::decode(request) {
        Err(e) => conformance_response::Result::RuntimeError(format!("bad request: {e}")),
        Ok(req) if req.message_type == FailureSet::FULL_NAME => {
            // We knowingly fail nothing.
            conformance_response::Result::ProtobufPayload(FailureSet::default().encode_to_vec())
        }
        Ok(req) => match (&req.payload, req.requested_output_format) {
            (
                Some(conformance_request::Payload::ProtobufPayload(payload)),
                WireFormat::PROTOBUF,
            ) => match req.message_type.as_str() {
                TestAllTypesProto3::FULL_NAME => round_trip::<TestAllTypesProto3>(payload),
                TestAllTypesProto2::FULL_NAME => round_trip::<TestAllTypesProto2>(payload),
                other => conformance_response::Result::RuntimeError(format!(
                    "unknown message type {other}"
                )),
            },
            _ => conformance_response::Result::Skipped(
                "only binary input and output are supported".to_owned(),
            ),
        },
    };
    ConformanceResponse {
        result: Some(result),
        ..Default::default()
    }
    .encode_to_vec()
}

#[cfg(not(conformance_protos))]
fn respond(_request: &[u8]) -> Vec<u8> {
    eprintln!("conformance testee: built without the conformance protos; run conformance/run.sh");
    std::process::exit(2)
}
