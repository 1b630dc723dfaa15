//! Errors of every stage, as one boxed type that renders as a `miette` diagnostic.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error as ThisError;

/// Why generation failed. Renders with file, line, column and the offending source line.
///
/// `Debug` prints the rendered diagnostic too, so a build script's
/// `fn main() -> Result<(), rust_rpc_compiler::Error>` shows it as it is meant to be read.
#[derive(ThisError, Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct Error {
    kind: Box<ErrorKind>,
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            return f.debug_struct("Error").field("kind", &self.kind).finish();
        }
        // `main` returning `Err` prints "Error: {:?}": start the diagnostic on a line of its own.
        write!(f, "\n{}", self.render_plain())
    }
}

#[derive(Debug, ThisError, Diagnostic)]
pub(crate) enum ErrorKind {
    /// Parsing or linking the `.proto` files failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Protox(protox::Error),
    /// The schema uses something rust-rpc does not generate.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Schema(SchemaError),
    // The cause is in the message, not a `source`, so it is not printed twice.
    #[error("cannot {action} '{}': {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot decode the descriptor set in '{}': {cause}", path.display())]
    DescriptorSet {
        path: PathBuf,
        cause: rust_rpc::DecodeError,
    },
    #[error("internal error: {0}")]
    #[diagnostic(help(
        "this is a bug in rust-rpc; please report it with the input that caused it"
    ))]
    Internal(String),
    #[error("invalid option: {0}")]
    #[diagnostic(help(
        "the options are listed in the README (`--help` for the CLI, `Builder`'s methods \
         for build scripts)"
    ))]
    Option(String),
    /// protox rejected what protoc accepts: its error, said plainly, and the way out.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Stricter(Stricter),
    /// protoc, run with `--protoc`, failed.
    #[error("protoc failed: {0}")]
    Protoc(String),
}

/// A protox error on input that protoc accepts (two proto2 fields with one JSON name, which
/// protoc only warns of): the location of protox's error, a message that names the problem,
/// and the way out (`--protoc`).
#[derive(Debug, ThisError)]
#[error("{message}")]
pub(crate) struct Stricter {
    message: String,
    help: &'static str,
    inner: protox::Error,
    /// The file is an editions file, which only protoc reads.
    editions: bool,
}

impl Diagnostic for Stricter {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.help))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
}

/// A problem found in a schema while lowering it, located in its `.proto` file.
#[derive(Debug, ThisError, Diagnostic)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SchemaError {
    pub(crate) file: String,
    /// One-based line and column, as editors count them.
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    #[help]
    pub(crate) help: Option<String>,
    #[source_code]
    pub(crate) source_code: Option<NamedSource<String>>,
    #[label("here")]
    pub(crate) span: Option<SourceSpan>,
}

impl SchemaError {
    /// Attaches the file's text so the diagnostic can show the offending line.
    pub(crate) fn attach_source(&mut self, text: String) {
        let offset = offset_of(&text, self.line, self.column);
        self.span = offset.map(|at| SourceSpan::from((at, 1)));
        self.source_code = Some(NamedSource::new(self.file.clone(), text));
    }
}

fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let line_text = text.get(line_start..)?.lines().next()?;
    let col = column
        .saturating_sub(1)
        .min(line_text.len().saturating_sub(1));
    Some(line_start + col)
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::new(ErrorKind::Io {
            action,
            path: path.into(),
            cause: source,
        })
    }

    pub(crate) fn descriptor_set(path: &std::path::Path, source: rust_rpc::DecodeError) -> Self {
        Error::new(ErrorKind::DescriptorSet {
            path: path.to_owned(),
            cause: source,
        })
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal(message.into()))
    }

    pub(crate) fn option(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Option(message.into()))
    }

    pub(crate) fn protoc(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Protoc(message.into()))
    }

    /// Whether protox stopped at an editions file, which protoc can read.
    pub(crate) fn is_editions_file(&self) -> bool {
        matches!(&*self.kind, ErrorKind::Stricter(s) if s.editions)
    }

    /// The schema error inside, if that is what this is.
    pub(crate) fn schema_mut(&mut self) -> Option<&mut SchemaError> {
        match &mut *self.kind {
            ErrorKind::Schema(e) => Some(e),
            _ => None,
        }
    }

    /// Renders the diagnostic as plain text: no colours, fixed width, stable across runs.
    pub fn render_plain(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100)
                .with_links(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("error: {self}\n");
        }
        out
    }
}

impl From<protox::Error> for Error {
    fn from(e: protox::Error) -> Self {
        // prost-reflect checks JSON names in every syntax and names the JSON name as the
        // field's explicit option, empty when there is none.
        let text = e.to_string();
        if text.starts_with("a field with JSON name") {
            return Error::new(ErrorKind::Stricter(Stricter {
                message: "two fields of this message have the same JSON name".to_owned(),
                help: "protoc accepts this in proto2 (it is an error in proto3 only) but protox, \
                       which reads .proto files by default, does not: generate with \
                       `--protoc PATH` (`Builder::protoc`) to have protoc read them",
                inner: e,
                editions: false,
            }));
        }
        // protox names the oneof that holds a proto3 `optional foo` `_foo` even where the
        // message declares a oneof `_foo`; protoc picks another name for its own.
        if let Some(name) = text
            .strip_prefix("name '")
            .and_then(|rest| rest.strip_suffix("' is defined twice"))
            .and_then(|full| full.rsplit('.').next())
            .filter(|last| last.starts_with('_') && last.len() > 1)
        {
            let message = format!(
                "the oneof `{name}` has the name protox gives the hidden oneof of the proto3 \
                 `optional {}` field",
                &name[1..]
            );
            return Error::new(ErrorKind::Stricter(Stricter {
                message,
                help: "protoc accepts this (it names its hidden oneof otherwise) but protox, \
                       which reads .proto files by default, does not: rename the oneof, or \
                       generate with `--protoc PATH` (`Builder::protoc`) to have protoc read it",
                inner: e,
                editions: false,
            }));
        }
        // protox 0.10 parses `syntax` files only; an editions file stops at its first word.
        if text.contains("but found 'edition'") {
            return Error::new(ErrorKind::Stricter(Stricter {
                message: "protox, which reads .proto files by default, cannot read editions \
                          files yet"
                    .to_owned(),
                help: "generate with `--protoc PATH` (`Builder::protoc`, `Config::protoc`) and \
                       protoc 27 or later, which reads them (rust-rpc generates editions 2023 \
                       and 2024), or set PROTOC to such a protoc, or use the plugin, \
                       protoc-gen-rust-rpc",
                inner: e,
                editions: true,
            }));
        }
        if text.contains("string is not valid utf-8") {
            return Error::new(ErrorKind::Stricter(Stricter {
                message: format!("{text}: a Rust `String` cannot hold it"),
                help: "declare the field `bytes`, or give it a UTF-8 default",
                inner: e,
                editions: false,
            }));
        }
        if text.starts_with("camel-case name of field") {
            // "camel-case name of field 'a' conflicts with field 'b'"
            let names: Vec<&str> = text.split('\'').skip(1).step_by(2).collect();
            if let [first, second] = names[..] {
                let json = json_name(first);
                if json == json_name(second) {
                    // A real conflict, which protoc rejects too: no way out to offer.
                    return Error::new(ErrorKind::Stricter(Stricter {
                        message: format!("{text}: both have the JSON name `{json}`"),
                        help: "rename one of the fields: protoc rejects this too (fields of a \
                               proto3 message need distinct JSON names)",
                        inner: e,
                        editions: false,
                    }));
                }
            }
            return Error::new(ErrorKind::Stricter(Stricter {
                message: format!("{text} (their JSON names differ only in case)"),
                help: "protoc accepts this since its JSON names differ (protoc 3.21 and protox \
                       do not): generate with `--protoc PATH` (`Builder::protoc`) and a recent \
                       protoc to have it read them",
                inner: e,
                editions: false,
            }));
        }
        Error::new(ErrorKind::Protox(e))
    }
}

/// A field's default JSON name, as protoc makes it: each `_` dropped and the letter after it
/// upper-cased.
fn json_name(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl From<SchemaError> for Error {
    fn from(e: SchemaError) -> Self {
        Error::new(ErrorKind::Schema(e))
    }
}

/// A problem worth telling the user about that does not stop generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `file:line:col` of the construct.
    pub location: String,
    /// What was not generated, and why.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.location, self.message)
    }
}
