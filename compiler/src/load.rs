//! The only stage that touches the file system or protox: `.proto` files in, a
//! `FileDescriptorSet` and the names of the files to generate out.

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_types::FileDescriptorSet;

use crate::error::Error;

/// Parsed and linked input, with where each requested file was read from.
pub(crate) struct Loaded {
    pub set: FileDescriptorSet,
    /// Names (as in the set) of the files the user asked for, in dependency order.
    pub requested: Vec<String>,
    /// Where each file was read from, for showing source lines in diagnostics.
    pub paths: Vec<(String, PathBuf)>,
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
    Ok(Loaded {
        set: compiler.file_descriptor_set(),
        requested,
        paths,
    })
}

/// Reads a binary `FileDescriptorSet`, as written by `protoc --descriptor_set_out`.
pub(crate) fn read_descriptor_set(path: &Path) -> Result<FileDescriptorSet, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    FileDescriptorSet::decode(bytes.as_slice())
        .map_err(|source| Error::descriptor_set(path, source))
}
