//! The `rust-rpc-compiler` command line, as a library function so that tests run exactly
//! what the binary runs.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rust_rpc::Message as _;

use crate::{load, Config, Error};

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
/// `--help` and `--version` exit the process as clap does. On a terminal, stderr shows
/// progress (files loaded, packages generated) and a summary line; elsewhere only warnings.
pub fn run<I, T>(args: I) -> Result<(), Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    let progress = Progress::new();
    let result = generate_and_write(&cli, &progress);
    if result.is_err() {
        progress.clear(); // the error starts on a clean line
    }
    result
}

fn generate_and_write(cli: &Cli, progress: &Progress) -> Result<(), Error> {
    let config = cli.config()?;
    let packages = |done, total| progress.packages(done, total);
    progress.line(format_args!("loading .proto files"));
    let (output, inputs) = match &cli.descriptor_set_in {
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
            let inputs = set.file.len();
            progress.loaded(inputs);
            let output = crate::generate_reporting(&set, &names, &config, &packages)?;
            (output, inputs)
        }
        None => {
            let loaded = load::read(cli.protoc.as_deref(), &cli.files, &cli.includes)?;
            if let Some(out) = &cli.descriptor_set_out {
                std::fs::write(out, loaded.set.encode_to_vec())
                    .map_err(|e| Error::io("write", out, e))?;
            }
            let inputs = loaded.set.file.len();
            progress.loaded(inputs);
            (crate::generate_loaded(&loaded, &config, &packages)?, inputs)
        }
    };
    progress.clear();
    for warning in &output.warnings {
        eprintln!("{warning}");
    }
    progress.line(format_args!("writing {} files", output.files.len()));
    // Everything is generated before anything is written, so a failure leaves no partial output.
    output.write_to(&cli.out_dir)?;
    let bytes: usize = output.files.iter().map(|f| f.content.len()).sum();
    progress.summary(format_args!(
        "rust-rpc-compiler: {} ({} of Rust) from {} in {} ({:.2} s)",
        count(output.files.len(), "file"),
        size(bytes),
        count(inputs, ".proto file"),
        cli.out_dir.display(),
        progress.start.elapsed().as_secs_f64(),
    ));
    Ok(())
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Bytes as people read them: `840 KB`, `15.2 MB` (decimal units).
fn size(bytes: usize) -> String {
    if bytes < 1_000_000 {
        format!("{} KB", bytes.div_ceil(1000))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// The progress line a long run shows on a terminal (a large API set takes tens of seconds),
/// redrawn in place at most every 100 ms, and the summary line at the end. Off when stderr is
/// not a terminal, so build logs and scripts see only warnings and errors.
struct Progress {
    /// stderr is a terminal: show the summary.
    on: bool,
    /// The terminal can redraw a line (`TERM` is not `dumb`): show progress too.
    redraw: bool,
    start: Instant,
    last_drawn: Mutex<Option<Instant>>,
}

impl Progress {
    fn new() -> Self {
        let on = std::io::stderr().is_terminal();
        let redraw = on && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
        Progress {
            on,
            redraw,
            start: Instant::now(),
            last_drawn: Mutex::new(None),
        }
    }

    /// Replaces the progress line.
    fn line(&self, text: std::fmt::Arguments<'_>) {
        if self.redraw {
            eprint!("\r\x1b[K{text}");
        }
    }

    fn clear(&self) {
        if self.redraw {
            eprint!("\r\x1b[K");
        }
    }

    fn loaded(&self, files: usize) {
        self.line(format_args!(
            "loaded {} in {:.2} s; generating",
            count(files, ".proto file"),
            self.start.elapsed().as_secs_f64()
        ));
    }

    /// Called from every generating thread; draws the first, the last, and one every 100 ms.
    fn packages(&self, done: usize, total: usize) {
        if !self.redraw {
            return;
        }
        let now = Instant::now();
        let Ok(mut last) = self.last_drawn.lock() else {
            return;
        };
        if done < total
            && last.is_some_and(|at| now.duration_since(at) < Duration::from_millis(100))
        {
            return;
        }
        *last = Some(now);
        self.line(format_args!("generating: {done}/{total} packages"));
    }

    fn summary(&self, text: std::fmt::Arguments<'_>) {
        self.clear();
        if self.on {
            eprintln!("{text}");
        }
    }
}
