//! The conformance testee: reads length-prefixed `ConformanceRequest`s on stdin and answers
//! each with a `ConformanceResponse` on stdout: binary, JSON and the text format, in and out.
//! Nothing else may be written to stdout.

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
        FailureSet, TestCategory, WireFormat,
    };
    use generated::protobuf_test_messages::{
        proto2::TestAllTypesProto2, proto3::TestAllTypesProto3,
    };
    use rust_rpc::json::{JsonOptions, TypeRegistry};
    use rust_rpc::text::{TextMessage, TextOptions};
    use rust_rpc::{Message, Name};
    use std::sync::{Arc, OnceLock};

    type Outcome = conformance_response::Result;

    /// Parses the payload as `M` and writes it in the requested format.
    fn run<M>(req: &ConformanceRequest, options: &Options) -> Outcome
    where
        M: Message + Default + TextMessage + rust_rpc::json::serde::Serialize,
        M: rust_rpc::json::serde::de::DeserializeOwned,
    {
        let parsed = match &req.payload {
            Some(conformance_request::Payload::ProtobufPayload(bytes)) => {
                M::decode(bytes).map_err(|e| e.to_string())
            }
            Some(conformance_request::Payload::JsonPayload(text)) => {
                rust_rpc::json::from_str_with::<M>(text, &options.json).map_err(|e| e.to_string())
            }
            Some(conformance_request::Payload::TextPayload(text)) => {
                rust_rpc::text::from_str_with::<M>(text, &options.text).map_err(|e| e.to_string())
            }
            _ => return Outcome::Skipped("JSPB is Google's own".to_owned()),
        };
        let msg = match parsed {
            Ok(msg) => msg,
            Err(e) => return Outcome::ParseError(e),
        };
        match req.requested_output_format {
            WireFormat::PROTOBUF => Outcome::ProtobufPayload(msg.encode_to_vec()),
            WireFormat::JSON => match rust_rpc::json::to_string_with(&msg, &options.json) {
                Ok(text) => Outcome::JsonPayload(text),
                Err(e) => Outcome::SerializeError(e.to_string()),
            },
            WireFormat::TEXT_FORMAT => {
                Outcome::TextPayload(rust_rpc::text::to_string_with(&msg, &options.text))
            }
            _ => Outcome::Skipped("JSPB is Google's own".to_owned()),
        }
    }

    struct Options {
        json: JsonOptions,
        text: TextOptions,
    }

    #[cfg(conformance_editions)]
    fn editions(name: &str, req: &ConformanceRequest, options: &Options) -> Outcome {
        use generated::protobuf_test_messages::{editions, proto2::TestAllRequiredTypesProto2};
        match name {
            TestAllRequiredTypesProto2::FULL_NAME => {
                run::<TestAllRequiredTypesProto2>(req, options)
            }
            editions::proto2::TestAllTypesProto2::FULL_NAME => {
                run::<editions::proto2::TestAllTypesProto2>(req, options)
            }
            editions::proto2::TestAllRequiredTypesProto2::FULL_NAME => {
                run::<editions::proto2::TestAllRequiredTypesProto2>(req, options)
            }
            editions::proto3::TestAllTypesProto3::FULL_NAME => {
                run::<editions::proto3::TestAllTypesProto3>(req, options)
            }
            editions::TestAllTypesEdition2023::FULL_NAME => {
                run::<editions::TestAllTypesEdition2023>(req, options)
            }
            other => Outcome::RuntimeError(format!("unknown message type {other}")),
        }
    }

    #[cfg(not(conformance_editions))]
    fn editions(name: &str, _: &ConformanceRequest, _: &Options) -> Outcome {
        Outcome::RuntimeError(format!("unknown message type {name}"))
    }

    // The JSON and the text format each have a registry type of their own, with the same
    // methods: one list of the test messages and extensions fills both.
    macro_rules! test_types {
        ($registry:ty) => {{
            let mut registry = <$registry>::new();
            registry
                .register::<TestAllTypesProto3>()
                .register::<TestAllTypesProto2>()
                .register_extension(&generated::protobuf_test_messages::proto2::EXTENSION_INT32);
            // The newer runner's files, with the editions messages and group extensions.
            #[cfg(conformance_editions)]
            {
                use generated::protobuf_test_messages::{editions, proto2};
                registry
                    .register::<editions::proto2::TestAllTypesProto2>()
                    .register::<editions::proto3::TestAllTypesProto3>()
                    .register::<editions::TestAllTypesEdition2023>()
                    .register_extension(&proto2::GROUPFIELD)
                    .register_extension(&editions::proto2::EXTENSION_INT32)
                    .register_extension(&editions::proto2::GROUPFIELD)
                    .register_extension(&editions::EXTENSION_INT32)
                    .register_extension(&editions::GROUPLIKETYPE)
                    .register_extension(&editions::DELIMITED_EXT);
            }
            Arc::new(registry)
        }};
    }
    static TEXT_REGISTRY: OnceLock<Arc<rust_rpc::text::TypeRegistry>> = OnceLock::new();
    let text_registry = TEXT_REGISTRY.get_or_init(|| test_types!(rust_rpc::text::TypeRegistry));
    static REGISTRY: OnceLock<Arc<TypeRegistry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| test_types!(TypeRegistry));

    let result = match ConformanceRequest::decode(request) {
        Err(e) => Outcome::RuntimeError(format!("bad request: {e}")),
        Ok(req) if req.message_type == FailureSet::FULL_NAME => {
            // We knowingly fail nothing.
            Outcome::ProtobufPayload(FailureSet::default().encode_to_vec())
        }
        Ok(req) => {
            let options = Options {
                json: JsonOptions::new()
                    .registry(registry.clone())
                    .ignore_unknown_fields(
                        req.test_category == TestCategory::JSON_IGNORE_UNKNOWN_PARSING_TEST,
                    ),
                text: TextOptions::new()
                    .registry(text_registry.clone())
                    .print_unknown_fields(req.print_unknown_fields),
            };
            match req.message_type.as_str() {
                TestAllTypesProto3::FULL_NAME => run::<TestAllTypesProto3>(&req, &options),
                TestAllTypesProto2::FULL_NAME => run::<TestAllTypesProto2>(&req, &options),
                other => editions(other, &req, &options),
            }
        }
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
