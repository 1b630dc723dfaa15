//! The build-script front end: generate into `OUT_DIR`, tell cargo what to watch, and fail the
//! build with the diagnostic when a `.proto` is wrong.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{load, Config, Error, MapType};

/// Configures and runs code generation from `build.rs`.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), rust_rpc_compiler::Error> {
///     rust_rpc_compiler::Builder::new()
///         .btree_maps()
///         .type_attribute(".echo.EchoRequest", "#[derive(Eq, Hash)]")
///         .compile(&["proto/echo.proto"], &["proto"])
/// }
/// ```
///
/// and in the crate: `rust_rpc::include_proto!("echo");`, or
/// `include!(concat!(env!("OUT_DIR"), "/_include.rs"));` for every package at once.
#[derive(Debug, Default)]
pub struct Builder {
    config: Config,
    out_dir: Option<PathBuf>,
    /// The first invalid option, reported by `compile`, so that setters can chain.
    invalid: Option<Error>,
}

impl Builder {
    /// A builder with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    fn set(mut self, name: &str, value: Option<&str>) -> Self {
        if self.invalid.is_none() {
            if let Err(e) = self.config.set_option(name, value) {
                self.invalid = Some(e);
            }
        }
        self
    }

    /// Writes into `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Names the file that stitches the packages into a module tree (default `_include.rs`).
    pub fn include_file(self, name: &str) -> Self {
        self.set("include_file", Some(name))
    }

    /// Chooses the Rust type of `map<K, V>` fields.
    pub fn map_type(self, map_type: MapType) -> Self {
        let value = match map_type {
            MapType::Hash => "hash",
            MapType::BTree => "btree",
        };
        self.set("map_type", Some(value))
    }

    /// Generates `BTreeMap`s for map fields.
    pub fn btree_maps(self) -> Self {
        self.map_type(MapType::BTree)
    }

    /// Whether messages keep unknown fields (default true).
    pub fn unknown_fields(self, keep: bool) -> Self {
        self.set(
            "unknown_fields",
            Some(if keep { "keep" } else { "discard" }),
        )
    }

    /// Whether to generate service stubs (default true).
    pub fn build_client(self, yes: bool) -> Self {
        self.set("client", Some(if yes { "true" } else { "false" }))
    }

    /// Whether to generate service server adapters (default true).
    pub fn build_server(self, yes: bool) -> Self {
        self.set("server", Some(if yes { "true" } else { "false" }))
    }

    /// Whether to generate services at all (default true); without them the code needs only
    /// the runtime's codec.
    pub fn build_services(self, yes: bool) -> Self {
        self.set("services", Some(if yes { "true" } else { "false" }))
    }

    /// Generates the `bytes` fields under `proto_path` (`.` for all) as `bytes::Bytes`.
    pub fn bytes(self, proto_path: &str) -> Self {
        self.set("bytes", Some(proto_path))
    }

    /// Generates protobuf's JSON mapping for every message: `serde::Serialize` and
    /// `Deserialize` through `rust_rpc::json`, which needs the runtime's `json` feature.
    pub fn json(self, yes: bool) -> Self {
        self.set("json", Some(if yes { "true" } else { "false" }))
    }

    /// Generates the JSON mapping behind `#[cfg(feature = "...")]` of the crate that includes
    /// the code, so it can offer JSON as a feature of its own (implies [`json`](Self::json)).
    pub fn json_feature(self, feature: &str) -> Self {
        self.set("json_feature", Some(feature))
    }

    /// Generates protobuf's text format for every message (`rust_rpc::text::TextMessage`),
    /// which needs the runtime's `text` feature.
    pub fn text(self, yes: bool) -> Self {
        self.set("text", Some(if yes { "true" } else { "false" }))
    }

    /// Generates the text format behind `#[cfg(feature = "...")]` of the crate that includes
    /// the code (implies [`text`](Self::text)).
    pub fn text_feature(self, feature: &str) -> Self {
        self.set("text_feature", Some(feature))
    }

    /// Adds `attribute` to the messages, enums and oneofs under `proto_path`.
    pub fn type_attribute(self, proto_path: &str, attribute: &str) -> Self {
        self.set("type_attribute", Some(&format!("{proto_path}={attribute}")))
    }

    /// Adds `attribute` to the fields under `proto_path`.
    pub fn field_attribute(self, proto_path: &str, attribute: &str) -> Self {
        self.set(
            "field_attribute",
            Some(&format!("{proto_path}={attribute}")),
        )
    }

    /// Uses the Rust types at `rust_path` for the proto types under `proto_path` instead of
    /// generating them (for example another crate's).
    pub fn extern_path(self, proto_path: &str, rust_path: &str) -> Self {
        self.set("extern_path", Some(&format!("{proto_path}={rust_path}")))
    }

    /// Has the protoc at `path` read the `.proto` files instead of protox, for files that
    /// protox rejects and protoc accepts (two proto2 fields with one JSON name). The output is
    /// the same for files both accept. Fails at `compile` if protoc cannot be run or rejects
    /// the files (its message is passed on).
    pub fn protoc(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.protoc = Some(path.into());
        self
    }

    /// Sets an option by the name the plugin and the CLI use (see [`crate::OPTIONS`]).
    pub fn option(self, name: &str, value: Option<&str>) -> Self {
        self.set(name, value)
    }

    /// Generates code for `protos`, resolving imports against `includes`. Prints
    /// `cargo:rerun-if-changed` for every input and imported file and `cargo:warning` for
    /// each warning. On failure returns the error, whose `Debug` is the rendered diagnostic:
    /// returning it from `main`, or unwrapping it, shows the file, line and column.
    pub fn compile(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        self.run(protos, includes, &mut std::io::stdout())
    }

    /// The work of `compile`, with cargo's instructions written to `cargo`.
    fn run(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        cargo: &mut dyn Write,
    ) -> Result<(), Error> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::option("OUT_DIR is not set: call from build.rs, or set out_dir")
                })?,
        };
        let files: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_owned()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_owned()).collect();
        let mut say = |line: String| {
            // Cargo reads these from stdout; if stdout is gone there is no one to tell.
            let _ = writeln!(cargo, "{line}");
        };
        // Inputs are watched before loading, so a file that fails to load is watched too; an
        // input named relative to an include directory (`x.proto` for `proto/x.proto`) is
        // watched where loading finds it, since cargo would take a path that does not exist
        // as changed on every build.
        let mut watched = std::collections::HashSet::new();
        for file in files.iter().filter(|file| file.exists()) {
            if watched.insert(file.as_path()) {
                say(format!("cargo:rerun-if-changed={}", file.display()));
            }
        }
        let loaded = load::read(self.config.protoc.as_deref(), &files, &includes)?;
        for (_, path) in &loaded.paths {
            if watched.insert(path.as_path()) {
                say(format!("cargo:rerun-if-changed={}", path.display()));
            }
        }
        let output = crate::generate_loaded(&loaded, &self.config, &|_, _| {})?;
        for warning in &output.warnings {
            say(format!("cargo:warning={warning}"));
        }
        output.write_to(out_dir)
    }
}

/// Generates code for `protos` into `OUT_DIR` with the default options: the one-call form of
/// [`Builder`] for `build.rs`.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Error> {
    Builder::new().compile(protos, includes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
    }

    #[test]
    fn tells_cargo_about_inputs_imports_and_warnings() {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = testdata().join("protos/cross_package");
        let mut cargo = Vec::new();
        Builder::new()
            .out_dir(out.path())
            .run(&[dir.join("draw/draw.proto")], &[&dir], &mut cargo)
            .expect("generate");
        let said = String::from_utf8(cargo).expect("utf-8");
        assert!(said.contains(&format!(
            "cargo:rerun-if-changed={}",
            dir.join("draw/draw.proto").display()
        )));
        assert!(
            said.contains("shapes/shapes.proto"),
            "imports are watched too: {said}"
        );
        assert!(said.contains("shapes/more_shapes.proto"), "{said}");
        assert!(out.path().join("cross.draw.v1.rs").exists());

        let mut cargo = Vec::new();
        let protos = testdata().join("protos");
        Builder::new()
            .out_dir(out.path())
            .run(&[protos.join("extensions.proto")], &[&protos], &mut cargo)
            .expect("generate");
        let said = String::from_utf8(cargo).expect("utf-8");
        // Group extensions used to warn; they are generated now, and nothing else there does.
        assert!(!said.contains("cargo:warning"), "{said}");
        assert!(said.contains("extensions.proto"), "{said}");
    }

    /// `compile(&["x.proto"], &["proto"])` names the input relative to its include directory:
    /// cargo must watch `proto/x.proto`, since a watched path that does not exist reruns the
    /// build script (and rebuilds the crate) on every build.
    #[test]
    fn an_input_named_within_an_include_directory_is_watched_where_it_is() {
        let out = tempfile::tempdir().expect("temp dir");
        let protos = testdata().join("protos");
        let mut cargo = Vec::new();
        Builder::new()
            .out_dir(out.path())
            .run(&["scalars.proto"], &[&protos], &mut cargo)
            .expect("generate");
        let said = String::from_utf8(cargo).expect("utf-8");
        let watched: Vec<&str> = said
            .lines()
            .filter_map(|line| line.strip_prefix("cargo:rerun-if-changed="))
            .collect();
        assert!(!watched.is_empty(), "{said}");
        for path in &watched {
            assert!(
                Path::new(path).exists(),
                "watches a path that does not exist: {said}"
            );
        }
        assert!(
            watched.iter().any(|p| p.ends_with("protos/scalars.proto")),
            "{said}"
        );
    }

    #[test]
    fn an_invalid_option_or_schema_fails_with_the_diagnostic() {
        let protos = testdata().join("protos");
        let err = Builder::new()
            .out_dir("/nonexistent")
            .map_type(MapType::Hash)
            .option("frobnicate", None)
            .run(&[protos.join("scalars.proto")], &[&protos], &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("unknown option 'frobnicate'"));

        let errors = testdata().join("errors");
        let out = tempfile::tempdir().expect("temp dir");
        let err = Builder::new()
            .out_dir(out.path())
            .run(
                &[errors.join("syntax_error.proto")],
                &[&errors],
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(err.render_plain().contains("syntax_error.proto:7:3"));
        // A build script's `main` returning this error prints its `Debug`: the diagnostic.
        let debug = format!("{err:?}");
        assert!(debug.contains("syntax_error.proto:7:3"), "{debug}");
        assert!(!debug.contains("kind:"), "{debug}");
        assert_eq!(
            std::fs::read_dir(out.path()).expect("out dir").count(),
            0,
            "nothing written on failure"
        );
    }
}
