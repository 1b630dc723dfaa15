//! The only stage that touches the file system, protox or protoc: `.proto` files in, a
//! `FileDescriptorSet` and the names of the files to generate out.

use std::path::{Path, PathBuf};

use rust_rpc::wkt::FileDescriptorSet;
use rust_rpc::Message as _;

use crate::error::Error;

/// Parsed and linked input, with where each requested file was read from.
pub(crate) struct Loaded {
    pub set: FileDescriptorSet,
    /// Names (as in the set) of the files the user asked for, in dependency order.
    pub requested: Vec<String>,
    /// Where each file was read from, for showing source lines in diagnostics.
    pub paths: Vec<(String, PathBuf)>,
}

/// Parses `files` with `protoc` when one is given, else with protox; an editions file, which
/// protox cannot read, goes to the protoc that `PROTOC` names, if it names one.
pub(crate) fn read(
    protoc: Option<&Path>,
    files: &[PathBuf],
    includes: &[PathBuf],
) -> Result<Loaded, Error> {
    if let Some(protoc) = protoc {
        return parse_with_protoc(protoc, files, includes);
    }
    match parse(files, includes) {
        Err(e) if e.is_editions_file() => match std::env::var_os("PROTOC") {
            Some(protoc) if !protoc.is_empty() => {
                parse_with_protoc(Path::new(&protoc), files, includes)
            }
            _ => Err(e),
        },
        other => other,
    }
}

/// Parses `files` with protox, resolving imports against `includes` and the bundled
/// `google/protobuf/*.proto`.
pub(crate) fn parse(files: &[PathBuf], includes: &[PathBuf]) -> Result<Loaded, Error> {
    let includes: Vec<PathBuf> = if includes.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        includes.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes)?;
    compiler.include_imports(true).include_source_info(true);
    for file in files {
        if let Err(error) = compiler.open_file(file) {
            // A file that exists nowhere is said so, rather than "not found in the include
            // paths"; protox's bundled well-known types exist without a file, so ask it first.
            if !file.exists() && !includes.iter().any(|dir| dir.join(file).exists()) {
                return Err(Error::io(
                    "read",
                    file,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                ));
            }
            // An include directory that does not exist (protoc only warns of one) is the
            // likelier cause of a file not found in the include paths.
            if let Some(missing) = includes.iter().find(|dir| !dir.is_dir()) {
                return Err(Error::io(
                    "read the include directory",
                    missing,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                ));
            }
            return Err(error.into());
        }
    }
    let requested = compiler
        .files()
        .filter(|f| !f.is_import())
        .map(|f| f.name().to_owned())
        .collect();
    let paths = compiler
        .files()
        .filter_map(|f| Some((f.name().to_owned(), f.path()?.to_owned())))
        .collect();
    // protox hands over prost-types' descriptors, which have no fields for editions or
    // features; its encoding goes into ours, which have them, and lower reads only ours.
    let set = FileDescriptorSet::decode(&compiler.encode_file_descriptor_set())
        .map_err(|source| Error::descriptor_set(Path::new("<protox>"), source))?;
    Ok(Loaded {
        set,
        requested,
        paths,
    })
}

/// Reads a binary `FileDescriptorSet`, as written by `protoc --descriptor_set_out`.
pub(crate) fn read_descriptor_set(path: &Path) -> Result<FileDescriptorSet, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    FileDescriptorSet::decode(&bytes).map_err(|source| Error::descriptor_set(path, source))
}

/// Has `protoc` parse `files` instead of protox (for what protox rejects or cannot read),
/// resolving imports against `includes`: `protoc --include_imports --include_source_info
/// --descriptor_set_out`. Its messages are passed on as they are.
pub(crate) fn parse_with_protoc(
    protoc: &Path,
    files: &[PathBuf],
    includes: &[PathBuf],
) -> Result<Loaded, Error> {
    let includes: Vec<PathBuf> = if includes.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        includes.to_vec()
    };
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let out = std::env::temp_dir().join(format!(
        "rust-rpc-protoc-{}-{}.pb",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut command = std::process::Command::new(protoc);
    command
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", out.display()));
    for include in &includes {
        command.arg(format!("--proto_path={}", include.display()));
    }
    command.args(files);
    let output = command
        .output()
        .map_err(|e| Error::io("run protoc", protoc, e))?;
    let read = if output.status.success() {
        read_descriptor_set(&out)
    } else {
        Err(Error::protoc(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    };
    let _ = std::fs::remove_file(&out);
    let set = read?;
    // The files asked for, by the names protoc gave them: relative to the include directory
    // that holds them, as protoc names them.
    let mut requested = Vec::new();
    let mut paths = Vec::new();
    for file in files {
        let name = includes
            .iter()
            .find_map(|dir| proto_name(dir, file))
            .ok_or_else(|| {
                Error::protoc(format!(
                    "{} is in none of the include directories",
                    file.display()
                ))
            })?;
        let path = if file.exists() {
            file.clone()
        } else {
            includes
                .iter()
                .map(|dir| dir.join(file))
                .find(|p| p.exists())
                .unwrap_or_else(|| file.clone())
        };
        paths.push((name.clone(), path));
        requested.push(name);
    }
    // In the set's order, which puts dependencies first.
    let requested = set
        .file
        .iter()
        .filter_map(|f| f.name.clone())
        .filter(|name| requested.contains(name))
        .collect();
    Ok(Loaded {
        set,
        requested,
        paths,
    })
}

/// The name protoc gives `file` under the include directory `dir`, if it is there: `file`
/// itself when it is relative to `dir`, else its path below `dir`; with `/` separators.
fn proto_name(dir: &Path, file: &Path) -> Option<String> {
    let relative = if file.is_relative() && dir.join(file).is_file() {
        file.to_path_buf()
    } else {
        let dir = dir.canonicalize().ok()?;
        let file = file.canonicalize().ok()?;
        file.strip_prefix(&dir).ok()?.to_path_buf()
    };
    let parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Some(parts.join("/"))
}
