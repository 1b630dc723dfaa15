//! The `rust-rpc-compiler` command line, as a library function so that tests run exactly
//! what the binary runs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use rust_rpc::Message as _;

use crate::{generate, load, Config, Error};

/// Generate Rust code for the rust-rpc runtime from .proto files.
///
/// Writes one `<package>.rs` per proto package and an include file that stitches them into a
/// module tree, so that `include!("<out>/_include.rs")` brings everything in. No protoc is
/// needed: files are parsed with protox, and google/protobuf/*.proto are always importable.
#[derive(Parser, Debug)]
#[command(name = "rust-rpc-compiler", version, about, long_about)]
struct Cli {
    /// The .proto files to generate code for. With --descriptor-set-in, the names of files in
    /// that set (all of them but google/protobuf/* when none are given).
    #[arg(value_name = "PROTO", required_unless_present = "descriptor_set_in")]
    files: Vec<PathBuf>,

    /// Directory to resolve imports against; repeat for several. Defaults to the current
    /// directory.
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    includes: Vec<PathBuf>,

    /// Directory to write the generated files into; created if missing.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: PathBuf,

    /// Rust type for `map<K, V>` fields.
    #[arg(long, value_enum, default_value_t = MapKind::Hash)]
    map_type: MapKind,

    /// Whether messages keep fields their schema does not declare and write them back.
    #[arg(long, value_enum, default_value_t = UnknownFields::Keep)]
    unknown_fields: UnknownFields,

    /// Name of the include file that stitches the package files into one module tree.
    #[arg(long, value_name = "NAME", default_value = "_include.rs")]
    include_file: String,

    /// Use Rust types from elsewhere for a proto path, as PROTO_PATH=RUST_PATH (for example
    /// `.my.common=::common_protos`). Repeatable; `.google.protobuf=::rust_rpc::wkt` is built in.
    #[arg(long = "extern-path", value_name = "PROTO=RUST")]
    extern_paths: Vec<String>,

    /// Add an attribute to the messages, enums and oneofs under a proto path, as
    /// PROTO_PATH=ATTRIBUTE (for example `.pkg.Msg=#[derive(Hash)]`; `.` is every type).
    #[arg(long = "type-attribute", value_name = "PROTO=ATTR")]
    type_attributes: Vec<String>,

    /// Add an attribute to the fields under a proto path, as PROTO_PATH=ATTRIBUTE
    /// (for example `.pkg.Msg.name=#[doc(alias = "title")]`).
    #[arg(long = "field-attribute", value_name = "PROTO=ATTR")]
    field_attributes: Vec<String>,

    /// Do not generate service stubs (the client side).
    #[arg(long)]
    no_client: bool,

    /// Do not generate service server adapters.
    #[arg(long)]
    no_server: bool,

    /// Do not generate services at all: messages only, which need only the runtime's codec
    /// (`rust-rpc` with `default-features = false`).
    #[arg(long)]
    no_services: bool,

    /// Generate `bytes` fields under a proto path as `bytes::Bytes` (`.` for every field),
    /// filled without copying when decoding from a `Bytes`. Repeatable.
    #[arg(long = "bytes", value_name = "PROTO_PATH")]
    bytes_paths: Vec<String>,

    /// Generate protobuf's JSON mapping for messages (serde `Serialize`/`Deserialize` through
    /// `rust_rpc::json`; the code then needs the runtime's `json` feature).
    #[arg(long)]
    json: bool,

    /// With --json: put the JSON impls behind `#[cfg(feature = "FEATURE")]` of the crate that
    /// includes the code (implies --json).
    #[arg(long, value_name = "FEATURE")]
    json_feature: Option<String>,

    /// Generate protobuf's text format for messages (`rust_rpc::text`; the code then needs the
    /// runtime's `text` feature).
    #[arg(long)]
    text: bool,

    /// With --text: put the impls behind `#[cfg(feature = "FEATURE")]` (implies --text).
    #[arg(long, value_name = "FEATURE")]
    text_feature: Option<String>,

    /// Read a binary FileDescriptorSet (from `protoc --descriptor_set_out` or `buf build -o`)
    /// instead of parsing .proto files. Include imports when making it.
    #[arg(long, value_name = "FILE")]
    descriptor_set_in: Option<PathBuf>,

    /// Also write the FileDescriptorSet that was compiled, imports and source info included.
    #[arg(long, value_name = "FILE")]
    descriptor_set_out: Option<PathBuf>,

    /// Have this protoc read the .proto files instead of protox (built in): for files protox
    /// rejects and protoc accepts. The output is the same for files both accept.
    #[arg(long, value_name = "PATH")]
    protoc: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MapKind {
    /// std::collections::HashMap
    Hash,
    /// std::collections::BTreeMap (ordered; deterministic encoding)
    Btree,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum UnknownFields {
    /// Keep unknown fields and re-emit them on encode.
    Keep,
    /// Drop unknown fields while decoding.
    Discard,
}

impl Cli {
    /// The same [`Config::set_option`] calls the plugin's parameters make.
    fn config(&self) -> Result<Config, Error> {
        let mut config = Config::default();
        let map_type = match self.map_type {
            MapKind::Hash => "hash",
            MapKind::Btree => "btree",
        };
        config.set_option("map_type", Some(map_type))?;
        let unknown = match self.unknown_fields {
            UnknownFields::Keep => "keep",
            UnknownFields::Discard => "discard",
        };
        config.set_option("unknown_fields", Some(unknown))?;
        config.set_option("include_file", Some(&self.include_file))?;
        for spec in &self.extern_paths {
            config.set_option("extern_path", Some(spec))?;
        }
        for spec in &self.type_attributes {
            config.set_option("type_attribute", Some(spec))?;
        }
        for spec in &self.field_attributes {
            config.set_option("field_attribute", Some(spec))?;
        }
        config.set_option(
            "client",
            Some(if self.no_client { "false" } else { "true" }),
        )?;
        config.set_option(
            "server",
            Some(if self.no_server { "false" } else { "true" }),
        )?;
        config.set_option(
            "services",
            Some(if self.no_services { "false" } else { "true" }),
        )?;
        for path in &self.bytes_paths {
            config.set_option("bytes", Some(path))?;
        }
        if self.json {
            config.set_option("json", None)?;
        }
        if let Some(feature) = &self.json_feature {
            config.set_option("json_feature", Some(feature))?;
        }
        if self.text {
            config.set_option("text", None)?;
        }
        if let Some(feature) = &self.text_feature {
            config.set_option("text_feature", Some(feature))?;
        }
        Ok(config)
    }
}

/// Parses `args` (program name first) and runs. Errors are returned for the caller to print;
/// `--help` and `--version` exit the process as clap does.
pub fn run<I, T>(args: I) -> Result<(), Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    let config = cli.config()?;
    let output = match &cli.descriptor_set_in {
        Some(path) => {
            let set = load::read_descriptor_set(path)?;
            let names: Vec<String> = if cli.files.is_empty() {
                set.file
                    .iter()
                    .map(|f| f.name().to_owned())
                    .filter(|n| !n.starts_with("google/protobuf/"))
                    .collect()
            } else {
                cli.files
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect()
            };
            if let Some(out) = &cli.descriptor_set_out {
                std::fs::write(out, set.encode_to_vec()).map_err(|e| Error::io("write", out, e))?;
            }
            generate(&set, &names, &config)?
        }
        None => {
            let loaded = load::read(cli.protoc.as_deref(), &cli.files, &cli.includes)?;
            if let Some(out) = &cli.descriptor_set_out {
                std::fs::write(out, loaded.set.encode_to_vec())
                    .map_err(|e| Error::io("write", out, e))?;
            }
            crate::generate_loaded(&loaded, &config)?
        }
    };
    for warning in &output.warnings {
        eprintln!("{warning}");
    }
    // Everything is generated before anything is written, so a failure leaves no partial output.
    output.write_to(&cli.out_dir)
}
