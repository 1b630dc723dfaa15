//! `rust-rpc-compiler` turns `.proto` files into Rust for the `rust_rpc` runtime.
//!
//! The pipeline is load (protox) -> `FileDescriptorSet` -> lower -> IR -> emit (`quote`) ->
//! render (`prettyplease`). The CLI, the protoc plugin and build scripts all call
//! [`generate`] (directly or through [`compile_protos_with`]), so they produce the same bytes.
//!
//! ```no_run
//! let config = rust_rpc_compiler::Config::default();
//! let output = rust_rpc_compiler::compile_protos_with(&["proto/echo.proto"], &["proto"], &config)?;
//! output.write_to("src/generated")?;
//! # Ok::<(), rust_rpc_compiler::Error>(())
//! ```

#![warn(missing_docs)]

mod builder;
#[cfg(feature = "cli")]
pub mod cli;
mod docs;
mod emit;
mod error;
mod features;
mod ident;
mod ir;
mod load;
mod lower;
mod options;
pub mod plugin;
mod render;

use std::path::{Path, PathBuf};

pub use builder::{compile_protos, Builder};
pub use error::{Error, Warning};
pub use options::OPTIONS;
pub use rust_rpc::wkt::FileDescriptorSet;

/// Which Rust map type `map<K, V>` fields use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapType {
    /// `std::collections::HashMap`.
    #[default]
    Hash,
    /// `std::collections::BTreeMap`: ordered, and encodes deterministically.
    BTree,
}

/// Options that shape the generated code. The defaults suit most users.
///
/// Start from `Config::default()` and set fields, or call [`Config::set_option`] with the
/// names the plugin and the CLI use; new options may be added without a breaking change.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Map type for `map<K, V>` fields.
    pub map_type: MapType,
    /// Keep fields the schema does not declare and write them back on encode.
    pub unknown_fields: bool,
    /// Name of the file that stitches the package files into one module tree.
    pub include_file: String,
    /// Proto paths (`.google.protobuf`) whose types are generated elsewhere, and the Rust path
    /// they live at (`::rust_rpc::wkt`). The longest matching prefix wins.
    pub extern_paths: Vec<(String, String)>,
    /// Generate a `...Stub` for each service.
    pub build_client: bool,
    /// Generate a `...Server` adapter for each service.
    pub build_server: bool,
    /// Generate services at all (descriptors, traits, stubs, clients, server adapters); off
    /// for messages-only users, whose code then needs only the runtime's codec.
    pub build_services: bool,
    /// Proto paths (`.` for everything, `.pkg.Msg.field` for one field) whose `bytes` fields
    /// are generated as `bytes::Bytes` (through `rust_rpc::bytes`) instead of `Vec<u8>`; decoding
    /// from a `Bytes` then fills them without copying.
    pub bytes_paths: Vec<String>,
    /// Attributes (`#[derive(Hash)]`) for the messages, enums and oneofs under a proto path:
    /// `.` is everything, `.pkg` a package, `.pkg.Msg` one type and what it nests.
    pub type_attributes: Vec<(String, String)>,
    /// Attributes for the fields under a proto path, such as `.pkg.Msg.field`.
    pub field_attributes: Vec<(String, String)>,
    /// Have this protoc read the `.proto` files instead of protox: for files protox rejects
    /// but protoc accepts. The output is the same for files both accept.
    pub protoc: Option<PathBuf>,
    /// Generate protobuf's JSON mapping for every message (`serde::Serialize` and
    /// `Deserialize`, through `rust_rpc::json`); the generated code then needs the runtime's
    /// `json` feature.
    pub json: bool,
    /// With [`json`](Self::json): put the JSON impls behind `#[cfg(feature = "...")]` of the
    /// crate that includes the code, so that crate can offer JSON as a feature of its own.
    pub json_feature: Option<String>,
    /// Generate protobuf's text format for every message (`rust_rpc::text::TextMessage`); the
    /// generated code then needs the runtime's `text` feature.
    pub text: bool,
    /// With [`text`](Self::text): put the impls behind `#[cfg(feature = "...")]`.
    pub text_feature: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            map_type: MapType::Hash,
            unknown_fields: true,
            include_file: "_include.rs".to_owned(),
            extern_paths: vec![(".google.protobuf".to_owned(), "::rust_rpc::wkt".to_owned())],
            build_client: true,
            build_server: true,
            build_services: true,
            bytes_paths: Vec::new(),
            type_attributes: Vec::new(),
            field_attributes: Vec::new(),
            protoc: None,
            json: false,
            json_feature: None,
            text: false,
            text_feature: None,
        }
    }
}

/// One generated file: its name relative to the output directory, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name relative to the output directory, such as `echo.rs`.
    pub name: String,
    /// The Rust source.
    pub content: String,
}

/// What a generation run produced.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// One file per proto package, then the include file.
    pub files: Vec<GeneratedFile>,
    /// Problems that did not stop generation, such as ignored extensions.
    pub warnings: Vec<Warning>,
}

impl Output {
    /// Writes every file into `dir`, creating it if needed. Files whose content is unchanged
    /// are left alone, so build systems do not see spurious modifications.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        for file in &self.files {
            let path = dir.join(&file.name);
            if std::fs::read(&path).is_ok_and(|old| old == file.content.as_bytes()) {
                continue;
            }
            std::fs::write(&path, &file.content).map_err(|e| Error::io("write", &path, e))?;
        }
        Ok(())
    }

    /// The file with this name, if generated.
    pub fn file(&self, name: &str) -> Option<&GeneratedFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// The name of the file a proto package is written to: `a.b.rs`, or `_.rs` without a package
/// (with `_` before `.rs` when another package of the same run has the name in another case).
pub fn package_file_name(package: &str) -> String {
    if package.is_empty() {
        "_.rs".to_owned()
    } else {
        format!("{package}.rs")
    }
}

/// Generates Rust for `files_to_generate` (names as they appear in `set`), using the rest of
/// `set` to resolve imports. This is the one entry point every front end shares.
pub fn generate(
    set: &FileDescriptorSet,
    files_to_generate: &[String],
    config: &Config,
) -> Result<Output, Error> {
    generate_reporting(set, files_to_generate, config, &|_, _| {})
}

/// Called with (packages generated, packages in all) each time a package is done, from any
/// thread: the CLI's progress line.
pub(crate) type PackageProgress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// [`generate`], reporting each package as it is done.
pub(crate) fn generate_reporting(
    set: &FileDescriptorSet,
    files_to_generate: &[String],
    config: &Config,
    progress: PackageProgress<'_>,
) -> Result<Output, Error> {
    let lowered = lower::lower(set, files_to_generate, config)?;
    let options = emit::EmitOptions {
        map_type: config.map_type,
        build_client: config.build_client,
        build_server: config.build_server,
        build_services: config.build_services,
        json: config.json.then_some(config.json_feature.as_deref()),
        text: config.text.then_some(config.text_feature.as_deref()),
    };
    let contents = render_packages(&lowered.packages, options, progress)?;
    let mut files = Vec::new();
    for (package, content) in lowered.packages.iter().zip(contents) {
        let name = package.file_name.clone();
        files.push(GeneratedFile { name, content });
    }
    let include = render::render(emit::include_file(&lowered.packages), &[])?;
    files.push(GeneratedFile {
        name: config.include_file.clone(),
        content: include,
    });
    Ok(Output {
        files,
        warnings: lowered.warnings,
    })
}

/// Emits and renders every package, in order, on as many threads as the machine has cores
/// (each package is independent of the others, and a large API set has hundreds). Token
/// streams cannot cross threads, so each thread emits and renders its own packages.
fn render_packages(
    packages: &[ir::Package],
    options: emit::EmitOptions<'_>,
    progress: PackageProgress<'_>,
) -> Result<Vec<String>, Error> {
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let render = |package: &ir::Package| {
        let text = render::render(emit::package(package, options), &package.files);
        let done = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(done, packages.len());
        text
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || packages.len() < 2 {
        return packages.iter().map(render).collect();
    }
    // Every thread takes the next package not yet taken, so one large package does not hold
    // back a share of small ones.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<String, Error>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(packages.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(package) = packages.get(i) else {
                            break out;
                        };
                        out.push((i, render(package)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, content)| content).collect()
}

/// Parses `.proto` files with protox and generates Rust for them.
///
/// `includes` are the directories imports are resolved against; `google/protobuf/*.proto`
/// is always available. A schema error carries the offending file's text, so its rendering
/// shows the line.
pub fn compile_protos_with(
    files: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
    config: &Config,
) -> Result<Output, Error> {
    let files: Vec<PathBuf> = files.iter().map(|f| f.as_ref().to_owned()).collect();
    let includes: Vec<PathBuf> = includes.iter().map(|i| i.as_ref().to_owned()).collect();
    let loaded = load::read(config.protoc.as_deref(), &files, &includes)?;
    generate_loaded(&loaded, config, &|_, _| {})
}

/// Generates from parsed files; a schema error gets the offending file's text attached so its
/// rendering shows the line.
pub(crate) fn generate_loaded(
    loaded: &load::Loaded,
    config: &Config,
    progress: PackageProgress<'_>,
) -> Result<Output, Error> {
    generate_reporting(&loaded.set, &loaded.requested, config, progress).map_err(|mut err| {
        if let Some(schema) = err.schema_mut() {
            let text = loaded
                .paths
                .iter()
                .find(|(name, _)| *name == schema.file)
                .and_then(|(_, path)| std::fs::read_to_string(path).ok());
            if let Some(text) = text {
                schema.attach_source(text);
            }
        }
        err
    })
}

/// Parses `.proto` files into a `FileDescriptorSet` (imports and source info included),
/// as `--descriptor-set-out` writes it.
pub fn parse_protos(
    files: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(FileDescriptorSet, Vec<String>), Error> {
    let files: Vec<PathBuf> = files.iter().map(|f| f.as_ref().to_owned()).collect();
    let includes: Vec<PathBuf> = includes.iter().map(|i| i.as_ref().to_owned()).collect();
    let loaded = load::parse(&files, &includes)?;
    Ok((loaded.set, loaded.requested))
}

/// Reads a binary `FileDescriptorSet` file, such as `protoc --descriptor_set_out` writes.
pub fn read_descriptor_set(path: impl AsRef<Path>) -> Result<FileDescriptorSet, Error> {
    load::read_descriptor_set(path.as_ref())
}
