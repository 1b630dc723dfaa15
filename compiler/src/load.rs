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
///
/// protox resolves the first part of a relative name against every package in view, protoc
/// only against the packages of the file itself and of its direct imports: in envoy's API,
/// `common.dns.v3.X` inside package `a.b.c` is `a.common.dns.v3.X` to protoc but
/// `a.b.common...` to protox once an indirect import declares a package `a.b.common`, and
/// protox then fails with "resolves to ..., which is not defined". For that error the
/// reference is rewritten, fully qualified, to the next enclosing scope's declared type (what
/// protoc finds) and the set compiled again, once per such reference.
pub(crate) fn parse(files: &[PathBuf], includes: &[PathBuf]) -> Result<Loaded, Error> {
    let includes: Vec<PathBuf> = if includes.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        includes.to_vec()
    };
    let cache = Cache::new(&includes);
    loop {
        match parse_set(files, &includes, &cache)? {
            Some(loaded) => return Ok(loaded),
            None => continue,
        }
    }
}

type Proto = protox::prost_reflect::prost_types::FileDescriptorProto;
type MessageProto = protox::prost_reflect::prost_types::DescriptorProto;

/// A file resolver over the include directories that parses each file once, and where a
/// file's references can be rewritten (see [`parse`]).
#[derive(Clone)]
struct Cache {
    inner: std::rc::Rc<protox::file::ChainFileResolver>,
    parsed: std::rc::Rc<std::cell::RefCell<std::collections::HashMap<String, protox::file::File>>>,
    /// Where the rewritten files were read from (a rewritten file has no path of its own).
    paths: std::rc::Rc<std::cell::RefCell<Vec<(String, PathBuf)>>>,
    /// How many references were rewritten; at most one per field, so this ends.
    rewrites: std::rc::Rc<std::cell::Cell<usize>>,
}

impl Cache {
    fn new(includes: &[PathBuf]) -> Self {
        let mut chain = protox::file::ChainFileResolver::new();
        for include in includes {
            chain.add(protox::file::IncludeFileResolver::new(include.clone()));
        }
        chain.add(protox::file::GoogleFileResolver::new());
        Cache {
            inner: std::rc::Rc::new(chain),
            parsed: Default::default(),
            paths: Default::default(),
            rewrites: Default::default(),
        }
    }

    /// For protox's "'N' resolves to 'S.N', which is not defined": rewrites `N` in the file
    /// to the type protoc resolves it to, the first declared `T.N` for `T` the enclosing
    /// scopes of `S`, outward. `false` when the error is another or no such type exists.
    fn requalify(&self, error: &protox::Error) -> bool {
        const MAX_REWRITES: usize = 10_000;
        let text = error.to_string();
        let Some((name, shadowed)) = shadowing(&text) else {
            return false;
        };
        let Some(file_name) = error.file() else {
            return false;
        };
        if self.rewrites.get() >= MAX_REWRITES {
            return false;
        }
        let Some(scope) = shadowed
            .strip_suffix(name)
            .and_then(|s| s.strip_suffix('.'))
        else {
            return false;
        };
        let declared = self.declared_types();
        let mut outer = scope;
        let target = loop {
            let Some((up, _)) = outer.rsplit_once('.') else {
                break declared.contains(name).then(|| name.to_owned());
            };
            outer = up;
            let candidate = format!("{outer}.{name}");
            if declared.contains(&candidate) {
                break Some(candidate);
            }
        };
        let Some(target) = target else {
            return false;
        };
        let mut parsed = self.parsed.borrow_mut();
        let Some(file) = parsed.get(file_name) else {
            return false;
        };
        let mut proto = file.file_descriptor_proto().clone();
        if !rewrite_references(&mut proto, name, &format!(".{target}")) {
            return false;
        }
        if let Some(path) = file.path() {
            self.paths
                .borrow_mut()
                .push((file_name.to_owned(), path.to_owned()));
        }
        parsed.insert(
            file_name.to_owned(),
            protox::file::File::from_file_descriptor_proto(proto),
        );
        self.rewrites.set(self.rewrites.get() + 1);
        true
    }

    /// Every message and enum the parsed files declare, by full name.
    fn declared_types(&self) -> std::collections::HashSet<String> {
        fn walk(scope: &str, m: &MessageProto, out: &mut std::collections::HashSet<String>) {
            let full = format!("{scope}.{}", m.name());
            for e in &m.enum_type {
                out.insert(format!("{full}.{}", e.name()));
            }
            for nested in &m.nested_type {
                walk(&full, nested, out);
            }
            out.insert(full);
        }
        let mut out = std::collections::HashSet::new();
        for file in self.parsed.borrow().values() {
            let proto = file.file_descriptor_proto();
            let package = proto.package();
            for m in &proto.message_type {
                walk(package, m, &mut out);
            }
            for e in &proto.enum_type {
                out.insert(format!("{package}.{}", e.name()));
            }
        }
        out.into_iter()
            .map(|n| n.trim_start_matches('.').to_owned())
            .collect()
    }
}

/// `(N, S)` from protox's "'N' resolves to 'S', which is not defined".
fn shadowing(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('\'')?;
    let (name, rest) = rest.split_once("' resolves to '")?;
    let (shadowed, _) = rest.split_once("', which is not defined")?;
    Some((name, shadowed))
}

/// Replaces the type references written `from` in `proto` (fields, extensions, methods) with
/// `to`; whether any was.
fn rewrite_references(proto: &mut Proto, from: &str, to: &str) -> bool {
    fn fix(slot: &mut Option<String>, from: &str, to: &str, done: &mut bool) {
        if slot.as_deref() == Some(from) {
            *slot = Some(to.to_owned());
            *done = true;
        }
    }
    fn message(m: &mut MessageProto, from: &str, to: &str, done: &mut bool) {
        for f in m.field.iter_mut().chain(m.extension.iter_mut()) {
            fix(&mut f.type_name, from, to, done);
            fix(&mut f.extendee, from, to, done);
        }
        for nested in &mut m.nested_type {
            message(nested, from, to, done);
        }
    }
    let mut done = false;
    for m in &mut proto.message_type {
        message(m, from, to, &mut done);
    }
    for f in &mut proto.extension {
        fix(&mut f.type_name, from, to, &mut done);
        fix(&mut f.extendee, from, to, &mut done);
    }
    for service in &mut proto.service {
        for method in &mut service.method {
            fix(&mut method.input_type, from, to, &mut done);
            fix(&mut method.output_type, from, to, &mut done);
        }
    }
    done
}

impl protox::file::FileResolver for Cache {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if let Some(file) = self.parsed.borrow().get(name) {
            return Ok(file.clone());
        }
        let file = self.inner.open_file(name)?;
        self.parsed
            .borrow_mut()
            .insert(name.to_owned(), file.clone());
        Ok(file)
    }
}

/// The files compiled together by one protox compiler; `None` when a reference was rewritten
/// and the set must be compiled again.
fn parse_set(
    files: &[PathBuf],
    includes: &[PathBuf],
    cache: &Cache,
) -> Result<Option<Loaded>, Error> {
    let mut compiler = protox::Compiler::with_file_resolver(cache.clone());
    compiler.include_imports(true).include_source_info(true);
    for file in files {
        if let Err(error) = compiler.open_file(file) {
            if cache.requalify(&error) {
                return Ok(None);
            }
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
    let mut paths: Vec<(String, PathBuf)> = compiler
        .files()
        .filter_map(|f| Some((f.name().to_owned(), f.path()?.to_owned())))
        .collect();
    paths.extend(cache.paths.borrow().iter().cloned());
    // protox hands over prost-types' descriptors, which have no fields for editions or
    // features; its encoding goes into ours, which have them, and lower reads only ours.
    let set = FileDescriptorSet::decode(&compiler.encode_file_descriptor_set())
        .map_err(|source| Error::descriptor_set(Path::new("<protox>"), source))?;
    Ok(Some(Loaded {
        set,
        requested,
        paths,
    }))
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
