//! The golden outputs, compiled: a golden that does not compile, or whose docs rustdoc
//! rejects, fails this crate. `prost_gen` holds prost's code for the same schemas, for the
//! differential tests. (The golden comparison itself is `compiler/tests/golden.rs`, which
//! does not depend on this crate, so it can rewrite goldens that no longer compile.)

/// Our generated code for each golden case.
pub mod ours {
    pub mod scalars {
        include!("../golden/scalars.rs");
    }
    pub mod proto3_optional {
        include!("../golden/proto3_optional.rs");
    }
    pub mod repeated {
        include!("../golden/repeated.rs");
    }
    pub mod maps {
        include!("../golden/maps.rs");
    }
    pub mod oneofs {
        include!("../golden/oneofs.rs");
    }
    pub mod nested {
        include!("../golden/nested.rs");
    }
    pub mod extensions {
        include!("../golden/extensions.rs");
    }
    pub mod enums {
        include!("../golden/enums.rs");
    }
    pub mod proto2 {
        include!("../golden/proto2.rs");
    }
    pub mod recursive {
        include!("../golden/recursive.rs");
    }
    pub mod keywords {
        include!("../golden/keywords.rs");
    }
    pub mod reserved {
        include!("../golden/reserved.rs");
    }
    pub mod comments {
        include!("../golden/comments.rs");
    }
    pub mod deprecated {
        include!("../golden/deprecated.rs");
    }
    pub mod wkt {
        include!("../golden/wkt.rs");
    }
    pub mod no_package {
        include!("../golden/no_package.rs");
    }
    pub mod options_btree_discard {
        include!("../golden/options_btree_discard.rs");
    }
    pub mod echo_service {
        include!("../golden/echo_service.rs");
    }
    pub mod services {
        include!("../golden/services.rs");
    }
    pub mod underscores {
        include!("../golden/underscores.rs");
    }
    pub mod enum_default_names {
        include!("../golden/enum_default_names.rs");
    }
    pub mod bytes_option {
        include!("../golden/bytes_option.rs");
    }
    pub mod messages_only {
        include!("../golden/messages_only.rs");
    }
    pub mod service_names {
        include!("../golden/service_names.rs");
    }
    pub mod field_names {
        include!("../golden/field_names.rs");
    }
    pub mod generated_names {
        include!("../golden/generated_names.rs");
    }
    pub mod client_only {
        include!("../golden/client_only.rs");
    }
    pub mod server_only {
        include!("../golden/server_only.rs");
    }
    /// Read by protoc (`--protoc`): protox rejects it.
    pub mod editions {
        include!("../golden/editions.rs");
    }
    pub mod editions_2024 {
        include!("../golden/editions_2024.rs");
    }
    pub mod synthetic_oneof_name {
        include!("../golden/synthetic_oneof_name.rs");
    }
    pub mod json_name_conflict {
        include!("../golden/json_name_conflict.rs");
    }
    pub mod cross_package {
        include!("../golden/cross_package/_include.rs");
    }
    pub mod descriptor_fields {
        include!("../golden/descriptor_fields.rs");
    }
    pub mod json3 {
        include!("../golden/json3.rs");
    }
    pub mod json2 {
        include!("../golden/json2.rs");
    }
    pub mod lenient {
        include!("../golden/leniency/_include.rs");
    }
    pub mod module_names {
        include!("../golden/module_names/_include.rs");
    }
    pub mod package_case {
        include!("../golden/package_case/_include.rs");
    }
    pub mod shadowed_package {
        include!("../golden/shadowed_package/_include.rs");
    }
    pub mod own_google_protobuf {
        include!("../golden/own_google_protobuf/_include.rs");
    }
}

/// prost's code for the same schemas.
#[allow(missing_docs, clippy::all)]
pub mod prost_gen {
    include!(concat!(env!("OUT_DIR"), "/prost/_prost.rs"));
}

/// The Python of the virtualenv that `interop/run.sh` makes (protobuf and grpcio-tools), for
/// the tests that compare with Python's protobuf: `$RUST_RPC_PY_VENV/bin/python`, by default
/// under `~/.cache/rust-rpc-py`.
///
/// # Panics
/// When it is not there, saying how to make it.
pub fn python() -> std::path::PathBuf {
    let venv = std::env::var_os("RUST_RPC_PY_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/rust-rpc-py")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no {}: run interop/run.sh, which makes the virtualenv with protobuf and grpcio-tools",
        python.display()
    );
    python
}
