//! Descriptors to IR. The only module that reads descriptors (`rust_rpc::wkt`'s): it resolves type
//! references into Rust paths, names everything once, decides which fields are boxed, attaches
//! comments, and rejects what rust-rpc does not generate.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rust_rpc::wkt::field_descriptor_proto::{Label, Type};
use rust_rpc::wkt::source_code_info::Location;
use rust_rpc::wkt::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, ServiceDescriptorProto,
};

use crate::error::{Error, SchemaError, Warning};
use crate::features::{Features, Presence};
use crate::ident::{self, RustIdent, RustPath};
use crate::ir::{
    Cardinality, Comments, DefaultValue, Enum, EnumValue, ExtensionDecl, Field, FieldKind,
    MapValue, Message, Method, Oneof, Package, Scalar, Service, ServiceItems, TypeRef,
};
use crate::Config;

/// The packages to write, and what the user should hear about.
pub(crate) struct Lowered {
    pub packages: Vec<Package>,
    pub warnings: Vec<Warning>,
}

// Field numbers of the descriptor messages, for `SourceCodeInfo` paths.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const MESSAGE_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;
const FILE_SYNTAX: i32 = 12;
const FILE_SERVICE: i32 = 6;
const FILE_EXTENSION: i32 = 7;
const MESSAGE_EXTENSION: i32 = 6;
const SERVICE_METHOD: i32 = 2;
const MESSAGE_RESERVED_RANGE: i32 = 9;

/// The largest field number protobuf allows, 2^29 - 1.
const MAX_FIELD_NUMBER: i32 = 536_870_911;

/// Lowers `files_to_generate` (names as in the set) into one [`Package`] per proto package.
pub(crate) fn lower(
    set: &FileDescriptorSet,
    files_to_generate: &[String],
    config: &Config,
) -> Result<Lowered, Error> {
    // Configs built in code skip `set_option`'s checks; attributes are checked here instead.
    for (_, attribute) in config
        .type_attributes
        .iter()
        .chain(&config.field_attributes)
    {
        crate::options::check_attribute(attribute)?;
    }
    for (_, rust) in &config.extern_paths {
        crate::options::check_rust_path(rust)?;
    }
    let index = Index::build(set, files_to_generate, config);
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    // No input warns today (group extensions did until they were generated); the channel
    // stays for what protoc only warns of.
    let warnings = Vec::new();
    // Name order, not the order a front end happened to list them in: protoc passes the
    // command line's order and protox its dependency order, and both must give the same bytes.
    let mut files_to_generate: Vec<&String> = files_to_generate.iter().collect();
    files_to_generate.sort();
    files_to_generate.dedup();
    let by_name: HashMap<&str, &FileDescriptorProto> =
        set.file.iter().map(|f| (f.name(), f)).collect();
    for name in files_to_generate {
        let Some(file) = by_name.get(name.as_str()).copied() else {
            return Err(Error::from(SchemaError {
                file: name.clone(),
                line: 1,
                column: 1,
                message: format!("file '{name}' is not in the descriptor set"),
                help: None,
                source_code: None,
                span: None,
            }));
        };
        let lowerer = FileLowerer::new(&index, file, config);
        lowerer.check_syntax()?;
        let package = packages
            .entry(file.package().to_owned())
            .or_insert_with(|| Package {
                name: file.package().to_owned(),
                module_wanted: file
                    .package()
                    .split('.')
                    .filter(|s| !s.is_empty())
                    .map(segment_name)
                    .collect(),
                module_path: index.package_module(file.package()),
                file_name: index.package_file_name(file.package()),
                files: Vec::new(),
                messages: Vec::new(),
                enums: Vec::new(),
                services: Vec::new(),
                extensions: Vec::new(),
            });
        package.files.push(name.clone());
        let scope = package.module_path.clone();
        for (i, msg) in file.message_type.iter().enumerate() {
            if is_map_entry(msg) {
                continue;
            }
            let full = qualify(file.package(), msg.name());
            package.messages.push(lowerer.message(
                msg,
                &full,
                &scope,
                (vec![FILE_MESSAGE, i as i32], lowerer.features),
            )?);
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            let full = qualify(file.package(), e.name());
            package
                .enums
                .push(lowerer.enumeration(e, &full, vec![FILE_ENUM, i as i32]));
        }
        for (i, service) in file.service.iter().enumerate() {
            package.services.push(lowerer.service(
                service,
                &scope,
                vec![FILE_SERVICE, i as i32],
            )?);
        }
        for (i, ext) in file.extension.iter().enumerate() {
            if let Some(decl) = lowerer.extension(
                ext,
                file.package(),
                &scope,
                (vec![FILE_EXTENSION, i as i32], lowerer.features),
            )? {
                package.extensions.push(decl);
            }
        }
    }
    Ok(Lowered {
        packages: packages.into_values().collect(),
        warnings,
    })
}

/// The Rust module path of every package of `set` and of each package's parents, decided once:
/// each segment in snake case; among the sibling segments of one parent those already written
/// as their module is named claim their names first, then the others in name order, each with
/// `_` appended while taken (`foo`, `foo_`, `Foo` become `foo`, `foo_`, `foo__`).
fn package_modules(set: &FileDescriptorSet) -> HashMap<String, Vec<RustIdent>> {
    // Every package and every parent of one, each with its parent: parents sort first.
    let mut prefixes: BTreeSet<(usize, String)> = BTreeSet::new();
    for file in &set.file {
        let segments: Vec<&str> = file
            .package()
            .split('.')
            .filter(|s| !s.is_empty())
            .collect();
        for end in 1..=segments.len() {
            prefixes.insert((end, segments[..end].join(".")));
        }
    }
    let mut children: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (_, prefix) in &prefixes {
        let (parent, segment) = prefix.rsplit_once('.').unwrap_or(("", prefix));
        children.entry(parent.to_owned()).or_default().push(segment);
    }
    let mut paths: HashMap<String, Vec<RustIdent>> = HashMap::from([(String::new(), Vec::new())]);
    for (_, parent) in std::iter::once((0, String::new())).chain(prefixes.iter().cloned()) {
        let Some(segments) = children.get_mut(&parent) else {
            continue;
        };
        segments.sort_by_key(|s| (!ident::snake(s).spells(s), *s));
        let base = paths.get(&parent).cloned().unwrap_or_default();
        let mut taken = reserved_module_names();
        for segment in segments.iter() {
            let name = ident::claim_in(&mut taken, segment_name(segment));
            let mut path = base.clone();
            path.push(name);
            paths.insert(qualify(&parent, segment), path);
        }
    }
    paths
}

/// The module name a package segment wants, before [`package_modules`] claims it.
fn segment_name(segment: &str) -> RustIdent {
    ident::fit_file_name(ident::snake(segment))
}

/// The file every package of `set` is written to: `a.b.rs` (`_.rs` without a package), with
/// `_` before `.rs` while another package's file has the name in another case, so that the
/// files stay apart on file systems that ignore case.
fn package_files(set: &FileDescriptorSet, include_file: &str) -> HashMap<String, String> {
    let mut names: Vec<&str> = set.file.iter().map(|f| f.package()).collect();
    names.sort_unstable();
    names.dedup();
    // As for modules: packages written as their modules are named (`foo`, `foo_`) first, so
    // that their files keep their names and a renamed package's file is renamed too.
    names.sort_by_key(|name| !name.split('.').all(|s| ident::snake(s).spells(s)));
    // The include file is written beside the packages' files.
    let mut taken: HashSet<String> = HashSet::from([include_file
        .to_lowercase()
        .trim_end_matches(".rs")
        .to_owned()]);
    let mut files = HashMap::new();
    for name in names {
        let file = crate::package_file_name(name);
        let mut stem = shortened(file.trim_end_matches(".rs"));
        while taken.contains(&stem.to_lowercase()) {
            stem.push('_');
        }
        taken.insert(stem.to_lowercase());
        files.insert(name.to_owned(), format!("{stem}.rs"));
    }
    files
}

/// Longest file stem kept as it is: file systems allow 255 bytes per name, and `_` and `.rs`
/// may be added.
const MAX_STEM: usize = 200;

/// `stem`, or for a longer one its first 160 bytes and a hash of the whole (FNV-1a, 64 bits),
/// so that every package keeps a file of its own whatever the length of its name.
fn shortened(stem: &str) -> String {
    if stem.len() <= MAX_STEM {
        return stem.to_owned();
    }
    let mut cut = 160;
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &stem[..cut], ident::fnv1a(stem.as_bytes()))
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

fn is_map_entry(msg: &DescriptorProto) -> bool {
    msg.options.as_ref().is_some_and(|o| o.map_entry())
}

/// The configured attributes whose proto path covers `full_name` (given without a leading dot):
/// `.` covers everything, and a path covers itself and everything below it.
fn attributes_for(rules: &[(String, String)], full_name: &str) -> Vec<String> {
    rules
        .iter()
        .filter(|(path, _)| covers(path, full_name))
        .map(|(_, attribute)| attribute.clone())
        .collect()
}

/// Whether a configured proto path (`.`, `.pkg`, `.pkg.Msg.field`) covers `full_name`
/// (written without its leading dot): it is the name or one of its enclosing scopes.
fn covers(path: &str, full_name: &str) -> bool {
    path == "."
        || path.strip_prefix('.').is_some_and(|p| {
            full_name == p
                || full_name
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// Whether any of `paths` covers `full_name`.
fn path_matches(paths: &[String], full_name: &str) -> bool {
    paths.iter().any(|p| covers(p, full_name))
}

/// Where a message or enum lives in the generated Rust.
struct TypeInfo {
    /// Module path from the crate's generated root, for types generated here.
    module_path: Vec<RustIdent>,
    rust_name: RustIdent,
    /// Absolute Rust path, for types generated elsewhere (`extern_path`).
    extern_path: Option<RustPath>,
    /// For map entry messages: the key and value fields.
    map_entry: Option<(FieldDescriptorProto, FieldDescriptorProto)>,
    /// For enums: each value's proto name and the Rust constant it is generated as, decided
    /// by [`enum_value_names`] here once, for the enum itself and for defaults that name it.
    enum_constants: Vec<(String, RustIdent)>,
    deprecated: bool,
    /// For an enum: whether it is closed (declared in a proto2 file), so a number it does not
    /// declare is kept with the unknown fields instead of in the field.
    closed: bool,
}

/// Every type in the descriptor set, by fully qualified name (no leading dot), plus the
/// fields that must be boxed to break recursion.
struct Index {
    types: HashMap<String, TypeInfo>,
    /// `(message full name, field number)` pairs whose message-typed field is boxed.
    boxed: HashSet<(String, i32)>,
    /// `(message full name, field number)` pairs whose message-typed field, of any
    /// cardinality (map fields through their entry type), lies on a cycle: values can nest
    /// through it without bound.
    recursive: HashSet<(String, i32)>,
    /// Messages (by full name) that hold a proto2 `required` field, themselves or through
    /// message fields of any cardinality: their values can be uninitialized.
    reaches_required: HashSet<String>,
    /// Each service's generated names (by full name): the trait's, its items', the
    /// descriptor's. Decided here, over every file of a package, as they share one module.
    services: HashMap<String, (RustIdent, ServiceItems, RustIdent)>,
    /// The names taken in each module's type namespace (types and modules share it): the
    /// modules of packages, then the types and nested-type modules of messages and enums as
    /// they are declared. See [`Index::claim`].
    taken: HashMap<Vec<RustIdent>, HashSet<RustIdent>>,
    /// The file being indexed is one this run generates: its types are generated here, so no
    /// extern path applies to them (a user's own file in `package google.protobuf`).
    generating: bool,
    /// The features of the file being indexed (its syntax's or edition's, and its own).
    file_features: Features,
    /// Each message's module for its nested types, by full name.
    modules: HashMap<String, RustIdent>,
    /// The names claimed for the schema's own items (see [`Index::claim_scope`]).
    claimed: HashMap<(String, Item), RustIdent>,
    /// Each extension's constant, by full name (see [`name_constants`]).
    extension_consts: HashMap<String, RustIdent>,
    /// Each package's module path (see [`package_modules`]).
    package_paths: HashMap<String, Vec<RustIdent>>,
    /// Each package's file (see [`package_files`]).
    package_files: HashMap<String, String>,
}

/// Whether a message gets a module (as `ir::Message::has_module` decides from the lowered
/// message): nested messages other than map entries, nested enums, or real oneofs.
fn has_module(msg: &DescriptorProto) -> bool {
    msg.nested_type.iter().any(|m| !is_map_entry(m))
        || !msg.enum_type.is_empty()
        || msg.extension.iter().any(|e| e.r#type() != Type::GROUP)
        || msg
            .field
            .iter()
            .any(|f| f.oneof_index.is_some() && !f.proto3_optional())
}

impl Index {
    fn build(set: &FileDescriptorSet, files_to_generate: &[String], config: &Config) -> Self {
        let package_paths = package_modules(set);
        let mut taken: HashMap<Vec<RustIdent>, HashSet<RustIdent>> = HashMap::new();
        for module in package_paths.values() {
            for end in 1..=module.len() {
                taken
                    .entry(module[..end - 1].to_vec())
                    .or_insert_with(reserved_module_names)
                    .insert(module[end - 1].clone());
            }
        }
        let mut index = Index {
            types: HashMap::new(),
            boxed: HashSet::new(),
            recursive: HashSet::new(),
            reaches_required: HashSet::new(),
            services: HashMap::new(),
            taken,
            modules: HashMap::new(),
            claimed: HashMap::new(),
            extension_consts: HashMap::new(),
            package_paths,
            package_files: package_files(set, &config.include_file),
            generating: false,
            file_features: Features::of_file(&FileDescriptorProto::default())
                .unwrap_or_else(|_| unreachable!("proto2 has defaults")),
        };
        let mut edges = Edges::new();
        let mut all_edges = Edges::new();
        // In name order, so that names claimed across files (`claim`) do not depend on the
        // order the files were given in.
        let mut files: Vec<_> = set.file.iter().collect();
        files.sort_by(|a, b| a.name().cmp(b.name()));
        let mut packages: BTreeMap<&str, Vec<Wanted>> = BTreeMap::new();
        for file in &files {
            let items = scope_items(file.package(), &file.message_type, &file.enum_type);
            let services = file
                .service
                .iter()
                .map(|s| Wanted::new(qualify(file.package(), s.name()), Item::Trait, s.name()));
            packages
                .entry(file.package())
                .or_default()
                .extend(items.into_iter().chain(services));
        }
        for (package, items) in packages {
            let module = index.package_module(package);
            index.claim_scope(&module, items);
        }
        for file in files {
            let module = index.package_module(file.package());
            index.generating = files_to_generate.iter().any(|f| f == file.name());
            // A file whose syntax or edition has no defaults here is reported by lower
            // (`check_syntax`); indexing goes on with proto2's.
            let proto2 = FileDescriptorProto::default();
            index.file_features = Features::of_file(file)
                .or_else(|_| Features::of_file(&proto2))
                .unwrap_or_else(|_| unreachable!("proto2 has defaults"));
            let file_features = index.file_features;
            for msg in &file.message_type {
                index.add_message(
                    file.package(),
                    file.package(),
                    &module,
                    msg,
                    (config, file_features),
                    (&mut edges, &mut all_edges),
                );
            }
            for e in &file.enum_type {
                let full = qualify(file.package(), e.name());
                let rust_name = index.claimed_name(&full, Item::Type);
                let extern_path = extern_path_for(&full, file.package(), &[], &rust_name, config)
                    .filter(|_| !index.generating);
                index.types.insert(
                    full,
                    TypeInfo {
                        module_path: module.clone(),
                        rust_name,
                        extern_path,
                        map_entry: None,
                        enum_constants: enum_constants(e),
                        deprecated: e.options.as_ref().is_some_and(|o| o.deprecated()),
                        closed: file_features
                            .with(e.options.as_ref().and_then(|o| o.features.as_ref()))
                            .closed_enum,
                    },
                );
            }
        }
        index.boxed = boxed_fields(&edges);
        index.recursive = boxed_fields(&all_edges);
        index.reaches_required = reaches_required(&index.reaches_required, &all_edges);
        index.name_services(set);
        index
    }

    /// Names every service's generated items. Types the `.proto` declares keep their names; a
    /// generated name already used in its module (by a message, an enum or another service's
    /// item) gets `_` appended until it is free, so `message KvClient` beside `service Kv` makes
    /// the client `KvClient_`. Names are given in declaration order, over files in name order.
    fn name_services(&mut self, set: &FileDescriptorSet) {
        let mut files: Vec<_> = set.file.iter().collect();
        files.sort_by(|a, b| a.name().cmp(b.name()));
        // Enums are tuple structs, whose names are values too.
        let mut values: HashMap<Vec<RustIdent>, HashSet<RustIdent>> = HashMap::new();
        for info in self.types.values().filter(|t| !t.enum_constants.is_empty()) {
            values
                .entry(info.module_path.clone())
                .or_default()
                .insert(info.rust_name.clone());
        }
        // Constants of each package's module: the schema's extensions, then the descriptors.
        let mut extensions: BTreeMap<&str, Vec<(String, &str)>> = BTreeMap::new();
        for file in &files {
            extensions.entry(file.package()).or_default().extend(
                file.extension
                    .iter()
                    .map(|e| (qualify(file.package(), e.name()), e.name())),
            );
        }
        for (package, exts) in extensions {
            let statics = values.entry(self.package_module(package)).or_default();
            self.extension_consts.extend(name_constants(&exts, statics));
        }
        // The traits first: a service the schema declares keeps its name against the items
        // generated for another (`service FooDyn` beside `service Foo`).
        for file in files {
            let module = self.package_module(file.package());
            for service in &file.service {
                let bare = ident::camel_base(service.name());
                let trait_name =
                    self.claimed_name(&qualify(file.package(), service.name()), Item::Trait);
                let none = HashSet::new();
                let taken = self.taken.get(&module).unwrap_or(&none);
                let free = |base: &str| ident::first_free(taken, ident::escape(base));
                let (channel_param, impl_param) = (free("C"), free("T"));
                let mut renamed = Vec::new();
                let mut claim = |suffix: &str| {
                    let wanted = ident::escape(&format!("{bare}{suffix}"));
                    let name = self.claim(&module, wanted.clone());
                    if name != wanted {
                        renamed.push((name.clone(), wanted));
                    }
                    name
                };
                let (stub, client, server, dyn_form, erased) = (
                    claim("Stub"),
                    claim("Client"),
                    claim("Server"),
                    claim("Dyn"),
                    claim("Erased"),
                );
                let items = ServiceItems {
                    channel_param,
                    impl_param,
                    stub,
                    client,
                    server,
                    dyn_form,
                    erased,
                    renamed,
                };
                let statics = values.entry(module.clone()).or_default();
                let descriptor = ident::claim_in(
                    statics,
                    ident::fit_file_name(ident::escape(&format!(
                        "{}_DESCRIPTOR",
                        ident::shouty(service.name()).unraw()
                    ))),
                );
                self.services.insert(
                    qualify(file.package(), service.name()),
                    (trait_name, items, descriptor),
                );
            }
        }
    }

    /// The Rust module path of `package`, as [`package_modules`] decided it.
    fn package_module(&self, package: &str) -> Vec<RustIdent> {
        // Every file's package is in the map: `package_modules` saw the whole set.
        self.package_paths.get(package).cloned().unwrap_or_default()
    }

    /// The file `package` is written to, as [`package_files`] decided it.
    fn package_file_name(&self, package: &str) -> String {
        self.package_files
            .get(package)
            .cloned()
            .unwrap_or_else(|| crate::package_file_name(package))
    }

    /// `name` in `module`'s type namespace, with `_` appended while it is taken there (message
    /// `Foo` beside message `foo`; the module `foo::oof` of message `foo.Oof` beside package
    /// `foo.oof`), and taken from then on.
    fn claim(&mut self, module: &[RustIdent], name: RustIdent) -> RustIdent {
        let taken = self
            .taken
            .entry(module.to_vec())
            .or_insert_with(reserved_module_names);
        ident::claim_in(taken, ident::fit_file_name(name))
    }

    /// Claims the names of one scope's own items in `module` (see [`Index::claim`]): first
    /// those the `.proto` already spells as their Rust name (`Foo` for a message `Foo`, `foo`
    /// for its module), then the converted ones (`Foo` for a message `foo`, `Unnamed1` for
    /// `_`), each group in declaration order.
    fn claim_scope(&mut self, module: &[RustIdent], mut items: Vec<Wanted>) {
        items.sort_by_key(|w| !w.exact);
        for w in items {
            let name = self.claim(module, w.name);
            self.claimed.insert(w.key, name);
        }
    }

    /// The name [`Index::claim_scope`] gave an item.
    fn claimed_name(&self, full_name: &str, item: Item) -> RustIdent {
        // Every item of every scope is claimed before it is read.
        self.claimed
            .get(&(full_name.to_owned(), item))
            .cloned()
            .unwrap_or_else(|| unreachable!("{full_name} ({item:?}) named before use"))
    }

    fn add_message(
        &mut self,
        package: &str,
        scope: &str,
        module: &[RustIdent],
        msg: &DescriptorProto,
        (config, parent_features): (&Config, Features),
        (edges, all_edges): (&mut Edges, &mut Edges),
    ) {
        let full = qualify(scope, msg.name());
        let features = parent_features.with(msg.options.as_ref().and_then(|o| o.features.as_ref()));
        // Messages with a required field of their own; `build` adds those that reach one.
        let required = |f: &FieldDescriptorProto| {
            f.label() == Label::REQUIRED
                || features
                    .with(f.options.as_ref().and_then(|o| o.features.as_ref()))
                    .presence
                    == Presence::Required
        };
        if msg.field.iter().any(required) {
            self.reaches_required.insert(full.clone());
        }
        let rust_name = if is_map_entry(msg) {
            ident::camel(msg.name())
        } else {
            self.claimed_name(&full, Item::Type)
        };
        let module_name = if has_module(msg) {
            self.claimed_name(&full, Item::Module)
        } else {
            ident::snake(msg.name())
        };
        self.modules.insert(full.clone(), module_name.clone());
        let nested_modules: Vec<RustIdent> = module[self.package_module(package).len()..].to_vec();
        let extern_path = extern_path_for(&full, package, &nested_modules, &rust_name, config)
            .filter(|_| !self.generating);
        let map_entry = if is_map_entry(msg) {
            let key = msg.field.iter().find(|f| f.number() == 1).cloned();
            let value = msg.field.iter().find(|f| f.number() == 2).cloned();
            key.zip(value)
        } else {
            None
        };
        let out: Vec<(i32, String)> = msg
            .field
            .iter()
            .filter(|f| {
                f.label() != Label::REPEATED && matches!(f.r#type(), Type::MESSAGE | Type::GROUP)
            })
            .map(|f| (f.number(), f.type_name().trim_start_matches('.').to_owned()))
            .collect();
        edges.insert(full.clone(), out);
        let every: Vec<(i32, String)> = msg
            .field
            .iter()
            .filter(|f| matches!(f.r#type(), Type::MESSAGE | Type::GROUP))
            .map(|f| (f.number(), f.type_name().trim_start_matches('.').to_owned()))
            .collect();
        all_edges.insert(full.clone(), every);
        let mut inner = module.to_vec();
        inner.push(module_name);
        self.claim_scope(&inner, scope_items(&full, &msg.nested_type, &msg.enum_type));
        let exts: Vec<(String, &str)> = msg
            .extension
            .iter()
            .map(|e| (qualify(&full, e.name()), e.name()))
            .collect();
        // The message's module holds its enums (tuple structs: values too) and these.
        let mut statics: HashSet<RustIdent> = msg
            .enum_type
            .iter()
            .map(|e| self.claimed_name(&qualify(&full, e.name()), Item::Type))
            .collect();
        self.extension_consts
            .extend(name_constants(&exts, &mut statics));
        for nested in &msg.nested_type {
            self.add_message(
                package,
                &full,
                &inner,
                nested,
                (config, features),
                (edges, all_edges),
            );
        }
        for e in &msg.enum_type {
            let enum_full = qualify(&full, e.name());
            let enum_name = self.claimed_name(&enum_full, Item::Type);
            let nested_modules: Vec<RustIdent> =
                inner[self.package_module(package).len()..].to_vec();
            let extern_path =
                extern_path_for(&enum_full, package, &nested_modules, &enum_name, config)
                    .filter(|_| !self.generating);
            self.types.insert(
                enum_full,
                TypeInfo {
                    module_path: inner.clone(),
                    rust_name: enum_name,
                    extern_path,
                    map_entry: None,
                    enum_constants: enum_constants(e),
                    deprecated: e.options.as_ref().is_some_and(|o| o.deprecated()),
                    closed: features
                        .with(e.options.as_ref().and_then(|o| o.features.as_ref()))
                        .closed_enum,
                },
            );
        }
        self.types.insert(
            full,
            TypeInfo {
                module_path: module.to_vec(),
                rust_name,
                extern_path,
                map_entry,
                enum_constants: Vec::new(),
                deprecated: msg.options.as_ref().is_some_and(|o| o.deprecated()),
                closed: false,
            },
        );
    }

    fn get(&self, full_name: &str) -> Option<&TypeInfo> {
        self.types.get(full_name)
    }
}

/// Names generated function bodies import the runtime's modules as (`use
/// ::rust_rpc::encoding as _enc;`), which would hide a module of the same name there: reserved
/// in every module's type namespace, so a package or message module `_enc` becomes `_enc_`. A
/// closed list: adding to it renames users' modules.
const RESERVED_MODULE_NAMES: &[&str] = &["_enc", "_rpc"];

fn reserved_module_names() -> HashSet<RustIdent> {
    RESERVED_MODULE_NAMES
        .iter()
        .map(|n| ident::escape(n))
        .collect()
}

/// The constants of extensions `(full name, proto name)` that share a module's value
/// namespace with `taken`: those whose name is already their constant (`FLAG`) first, then the
/// others (`flag`), each in declaration order, `_` appended while taken.
fn name_constants(
    extensions: &[(String, &str)],
    taken: &mut HashSet<RustIdent>,
) -> Vec<(String, RustIdent)> {
    let mut wanted: Vec<(&String, RustIdent, bool)> = extensions
        .iter()
        .map(|(full, name)| {
            let constant = ident::fit_file_name(ident::shouty(name));
            let exact = constant.spells(name);
            (full, constant, exact)
        })
        .collect();
    wanted.sort_by_key(|(_, _, exact)| !exact);
    wanted
        .into_iter()
        .map(|(full, constant, _)| (full.clone(), ident::claim_in(taken, constant)))
        .collect()
}

/// The kinds of item the schema declares that take a name in a module's type namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Item {
    /// A message's struct or an enum's type.
    Type,
    /// A message's module for its nested types.
    Module,
    /// A service's trait.
    Trait,
}

/// A name an item wants in its module.
struct Wanted {
    key: (String, Item),
    name: RustIdent,
    /// Whether the `.proto` spells the name as it is (no case change, no escape).
    exact: bool,
}

impl Wanted {
    fn new(full_name: String, item: Item, proto_name: &str) -> Self {
        let name = match item {
            Item::Module => ident::snake(proto_name),
            Item::Type | Item::Trait => ident::camel(proto_name),
        };
        let exact = name.spells(proto_name);
        Wanted {
            key: (full_name, item),
            name,
            exact,
        }
    }
}

/// The items of one scope (a package or a message) that take names in its module: messages
/// (map entries aside) and their modules, and enums.
fn scope_items(
    scope: &str,
    messages: &[DescriptorProto],
    enums: &[EnumDescriptorProto],
) -> Vec<Wanted> {
    let mut items = Vec::new();
    for msg in messages.iter().filter(|m| !is_map_entry(m)) {
        let full = qualify(scope, msg.name());
        items.push(Wanted::new(full.clone(), Item::Type, msg.name()));
        if has_module(msg) {
            items.push(Wanted::new(full, Item::Module, msg.name()));
        }
    }
    for e in enums {
        items.push(Wanted::new(qualify(scope, e.name()), Item::Type, e.name()));
    }
    items
}

/// The messages that hold a `required` field (`direct`), or reach one through message fields
/// (`edges`: every message-typed field of each message, map entries included).
fn reaches_required(direct: &HashSet<String>, edges: &Edges) -> HashSet<String> {
    let mut reach = direct.clone();
    // Grows until no message gains: each round adds at least one, so it ends.
    loop {
        let gained: Vec<String> = edges
            .iter()
            .filter(|(from, to)| {
                !reach.contains(*from) && to.iter().any(|(_, target)| reach.contains(target))
            })
            .map(|(from, _)| from.clone())
            .collect();
        if gained.is_empty() {
            return reach;
        }
        reach.extend(gained);
    }
}

/// The absolute Rust path of a type covered by one of the configured extern paths.
fn extern_path_for(
    full: &str,
    package: &str,
    nested_modules: &[RustIdent],
    rust_name: &RustIdent,
    config: &Config,
) -> Option<RustPath> {
    let dotted = format!(".{full}");
    let (proto_prefix, rust_prefix) = config
        .extern_paths
        .iter()
        .filter(|(proto, _)| dotted == *proto || dotted.starts_with(&format!("{proto}.")))
        .max_by_key(|(proto, _)| proto.len())?;
    // `lower` checked every extern path (`options::check_rust_path`) before indexing.
    let mut path = RustPath::parse_checked(rust_prefix);
    if dotted == *proto_prefix {
        return Some(path);
    }
    // Only package-level prefixes are mapped segment by segment.
    let package_dotted = format!(".{package}");
    let rest_of_package = package_dotted.strip_prefix(proto_prefix.as_str())?;
    for segment in rest_of_package.split('.').filter(|s| !s.is_empty()) {
        path.segments.push(ident::snake(segment));
    }
    path.segments.extend(nested_modules.iter().cloned());
    path.segments.push(rust_name.clone());
    Some(path)
}

/// Message-typed fields by message: `(field number, field type)` for each.
type Edges = HashMap<String, Vec<(i32, String)>>;

/// Fields whose message type can reach back to the containing message through singular
/// fields: without a `Box` such a struct would have infinite size. These are exactly the
/// edges inside one strongly connected component.
fn boxed_fields(edges: &HashMap<String, Vec<(i32, String)>>) -> HashSet<(String, i32)> {
    let component = strongly_connected(edges);
    let mut boxed = HashSet::new();
    for (from, outs) in edges {
        for (number, to) in outs {
            if component.contains_key(from) && component.get(from) == component.get(to) {
                boxed.insert((from.clone(), *number));
            }
        }
    }
    boxed
}

/// Tarjan's algorithm, iterative so that long chains of messages cannot overflow the stack.
fn strongly_connected(edges: &HashMap<String, Vec<(i32, String)>>) -> HashMap<String, usize> {
    let mut names: Vec<&String> = edges.keys().collect();
    names.sort();
    let id: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let adj: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            edges[*n]
                .iter()
                .filter_map(|(_, t)| id.get(t.as_str()).copied())
                .collect()
        })
        .collect();
    let n = names.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let mut next_index = 0;
    let mut next_comp = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adj[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).clone(), comp[i]))
        .collect()
}

/// The Rust path to `target` (a module path plus a name) as seen from module `scope`.
fn relative_path(scope: &[RustIdent], target_module: &[RustIdent], name: &RustIdent) -> RustPath {
    let common = scope
        .iter()
        .zip(target_module)
        .take_while(|(a, b)| a == b)
        .count();
    let mut segments = vec![ident::path_keyword("super"); scope.len() - common];
    segments.extend(target_module[common..].iter().cloned());
    segments.push(name.clone());
    RustPath::new(false, segments)
}

struct FileLowerer<'a> {
    index: &'a Index,
    file: &'a FileDescriptorProto,
    config: &'a Config,
    locations: HashMap<Vec<i32>, &'a Location>,
    /// The file's features: its syntax's or edition's defaults, and its own settings.
    features: Features,
}

impl<'a> FileLowerer<'a> {
    fn new(index: &'a Index, file: &'a FileDescriptorProto, config: &'a Config) -> Self {
        let locations = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .map(|loc| (loc.path.clone(), loc))
            .collect();
        FileLowerer {
            index,
            file,
            config,
            locations,
            features: Features::of_file(file)
                .or_else(|_| Features::of_file(&FileDescriptorProto::default()))
                .unwrap_or_else(|_| unreachable!("proto2 has defaults")),
        }
    }

    fn error(&self, path: &[i32], message: String, help: Option<String>) -> Error {
        let (line, column) = self.line_col(path);
        Error::from(SchemaError {
            file: self.file.name().to_owned(),
            line,
            column,
            message,
            help,
            source_code: None,
            span: None,
        })
    }

    fn line_col(&self, path: &[i32]) -> (usize, usize) {
        match self.locations.get(path) {
            // Spans from a descriptor set made elsewhere may be negative; those point nowhere.
            Some(loc) if loc.span.len() >= 2 => {
                match (usize::try_from(loc.span[0]), usize::try_from(loc.span[1])) {
                    (Ok(line), Ok(column)) => (line.saturating_add(1), column.saturating_add(1)),
                    _ => (1, 1),
                }
            }
            _ => (1, 1),
        }
    }

    fn check_syntax(&self) -> Result<(), Error> {
        match Features::of_file(self.file) {
            Ok(_) => Ok(()),
            Err(message) => Err(self.error(
                &[FILE_SYNTAX],
                message,
                Some(
                    "rust-rpc generates code for proto2, proto3 and editions 2023 and 2024 files"
                        .to_owned(),
                ),
            )),
        }
    }

    /// The typed identifier of an `extend` field declared in `scope_full` (a package or a
    /// message), written into the module `module`. `taken` holds the constant names already
    /// used in that module.
    fn extension(
        &self,
        ext: &FieldDescriptorProto,
        scope_full: &str,
        module: &[RustIdent],
        (path, features): (Vec<i32>, Features),
    ) -> Result<Option<ExtensionDecl>, Error> {
        let mut field = self.field(scope_full, ext, module, (&path, features))?;
        if !matches!(field.cardinality, Cardinality::Repeated { .. }) {
            field.cardinality = Cardinality::Optional;
        }
        // A message value is written without a parent to bound its depth: count it.
        if let FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } = &mut field.kind {
            ty.recursive = true;
        }
        let extendee = self.type_ref(ext.extendee(), module, &path)?;
        let full_name = qualify(scope_full, ext.name());
        let wanted = ident::fit_file_name(ident::shouty(ext.name()));
        // Every extension of the set was named when it was indexed.
        let const_name = self
            .index
            .extension_consts
            .get(&full_name)
            .cloned()
            .unwrap_or_else(|| wanted.clone());
        Ok(Some(ExtensionDecl {
            renamed_from: (const_name != wanted).then_some(wanted),
            const_name,
            full_name,
            extendee,
            field,
        }))
    }

    fn comments(&self, path: &[i32]) -> Comments {
        let Some(loc) = self.locations.get(path) else {
            return Comments::default();
        };
        let split = |text: Option<&String>| -> Vec<String> {
            match text {
                Some(t) => {
                    let t = t.strip_suffix('\n').unwrap_or(t);
                    t.split('\n').map(str::to_owned).collect()
                }
                None => Vec::new(),
            }
        };
        Comments {
            leading: split(loc.leading_comments.as_ref()),
            trailing: split(loc.trailing_comments.as_ref()),
        }
    }

    /// The Rust name the index decided for the type `full`.
    fn type_name(&self, full: &str, proto_name: &str) -> RustIdent {
        self.index
            .types
            .get(full)
            .map(|t| t.rust_name.clone())
            .unwrap_or_else(|| ident::camel(proto_name))
    }

    fn type_ref(
        &self,
        type_name: &str,
        scope: &[RustIdent],
        path: &[i32],
    ) -> Result<TypeRef, Error> {
        let full = type_name.trim_start_matches('.');
        let info = self.index.get(full).ok_or_else(|| {
            self.error(
                path,
                format!("type '{full}' is not defined in the inputs"),
                None,
            )
        })?;
        let rust_path = match &info.extern_path {
            Some(p) => p.clone(),
            None => relative_path(scope, &info.module_path, &info.rust_name),
        };
        Ok(TypeRef {
            full_name: full.to_owned(),
            rust_path,
            deprecated: info.deprecated,
            recursive: false,
            closed: info.closed,
            reaches_required: self.index.reaches_required.contains(full),
        })
    }

    fn message(
        &self,
        msg: &DescriptorProto,
        full_name: &str,
        scope: &[RustIdent],
        (path, parent_features): (Vec<i32>, Features),
    ) -> Result<Message, Error> {
        let features = parent_features.with(msg.options.as_ref().and_then(|o| o.features.as_ref()));
        let module_name = self
            .index
            .modules
            .get(full_name)
            .cloned()
            .unwrap_or_else(|| ident::snake(msg.name()));
        let mut inner = scope.to_vec();
        inner.push(module_name.clone());

        // The module's names so far: nested types and their own modules, as the index
        // decided them.
        let nested_names: HashSet<RustIdent> =
            self.index.taken.get(&inner).cloned().unwrap_or_default();

        // Oneofs that only carry a proto3 `optional` field are not real oneofs.
        let real_oneofs: Vec<usize> = (0..msg.oneof_decl.len())
            .filter(|&i| {
                msg.field
                    .iter()
                    .any(|f| f.oneof_index == Some(i as i32) && !f.proto3_optional())
            })
            .collect();
        let mut oneofs = Vec::new();
        // The module's names: nested types first, then each oneof's enum in order.
        let mut module_names: HashSet<RustIdent> = nested_names.iter().cloned().collect();
        for &i in &real_oneofs {
            let decl = &msg.oneof_decl[i];
            let mut oneof_path = path.clone();
            oneof_path.extend([MESSAGE_ONEOF, i as i32]);
            let mut rust_enum = ident::fit_file_name(ident::camel(decl.name()));
            if module_names.contains(&rust_enum) {
                rust_enum = ident::fit_file_name(ident::escape(&format!(
                    "{}Oneof",
                    ident::camel_base(decl.name())
                )));
            }
            let rust_enum = ident::claim_in(&mut module_names, rust_enum);
            let oneof_features =
                features.with(decl.options.as_ref().and_then(|o| o.features.as_ref()));
            let mut fields = Vec::new();
            for (j, f) in msg.field.iter().enumerate() {
                if f.oneof_index == Some(i as i32) {
                    let mut field_path = path.clone();
                    field_path.extend([MESSAGE_FIELD, j as i32]);
                    let mut field =
                        self.field(full_name, f, &inner, (&field_path, oneof_features))?;
                    let wanted = ident::camel(f.name());
                    field.rust_name = wanted.clone();
                    // Variants whose names meet (`foo_bar`, `fooBar`) get `_` appended.
                    while fields
                        .iter()
                        .any(|v: &Field| v.rust_name == field.rust_name)
                    {
                        field.rust_name = field.rust_name.underscored();
                    }
                    field.renamed_from = (field.rust_name != wanted).then_some(wanted);
                    field.cardinality = Cardinality::OneofMember;
                    fields.push(field);
                }
            }
            oneofs.push(Oneof {
                attributes: attributes_for(
                    &self.config.type_attributes,
                    &qualify(full_name, decl.name()),
                ),
                proto_name: decl.name().to_owned(),
                rust_field: ident::snake(decl.name()),
                field_renamed_from: None,
                renamed_from: Some(ident::camel(decl.name())).filter(|w| *w != rust_enum),
                rust_enum,
                fields,
                comments: self.comments(&oneof_path),
            });
        }

        let mut fields = Vec::new();
        for (j, f) in msg.field.iter().enumerate() {
            let oneofs_declared = msg.oneof_decl.len();
            if f.oneof_index
                .is_some_and(|i| usize::try_from(i).map_or(true, |i| i >= oneofs_declared))
            {
                let mut field_path = path.clone();
                field_path.extend([MESSAGE_FIELD, j as i32]);
                return Err(self.error(
                    &field_path,
                    format!(
                        "field '{}' of '{full_name}' names oneof {}, which is out of range: the message declares {oneofs_declared}",
                        f.name(),
                        f.oneof_index.unwrap_or_default()
                    ),
                    None,
                ));
            }
            let in_real_oneof = f.oneof_index.is_some() && !f.proto3_optional();
            if in_real_oneof {
                continue;
            }
            let mut field_path = path.clone();
            field_path.extend([MESSAGE_FIELD, j as i32]);
            fields.push(self.field(full_name, f, scope, (&field_path, features))?);
        }
        let extendable = !msg.extension_range.is_empty() && self.config.unknown_fields;
        name_members(
            &mut fields,
            &mut oneofs,
            self.config.unknown_fields,
            extendable,
        );
        let mut extensions = Vec::new();
        for (j, ext) in msg.extension.iter().enumerate() {
            let mut ext_path = path.clone();
            ext_path.extend([MESSAGE_EXTENSION, j as i32]);
            if let Some(decl) = self.extension(ext, full_name, &inner, (ext_path, features))? {
                extensions.push(decl);
            }
        }

        let mut nested_messages = Vec::new();
        for (j, nested) in msg.nested_type.iter().enumerate() {
            if is_map_entry(nested) {
                continue;
            }
            let mut nested_path = path.clone();
            nested_path.extend([MESSAGE_NESTED, j as i32]);
            let nested_full = qualify(full_name, nested.name());
            nested_messages.push(self.message(
                nested,
                &nested_full,
                &inner,
                (nested_path, features),
            )?);
        }
        let mut nested_enums = Vec::new();
        for (j, e) in msg.enum_type.iter().enumerate() {
            let mut enum_path = path.clone();
            enum_path.extend([MESSAGE_ENUM, j as i32]);
            nested_enums.push(self.enumeration(e, &qualify(full_name, e.name()), enum_path));
        }
        // Descriptor ranges are end-exclusive; the IR keeps them as written in the `.proto`.
        let mut reserved_ranges = Vec::new();
        for (j, r) in msg.reserved_range.iter().enumerate() {
            if !(1..=MAX_FIELD_NUMBER).contains(&r.start())
                || r.end() <= r.start()
                || r.end() > MAX_FIELD_NUMBER + 1
            {
                let mut range_path = path.clone();
                range_path.extend([MESSAGE_RESERVED_RANGE, j as i32]);
                return Err(self.error(
                    &range_path,
                    format!(
                        "reserved range {} to {} of '{full_name}' is out of range: field numbers go from 1 to {MAX_FIELD_NUMBER}",
                        r.start(),
                        i64::from(r.end()) - 1
                    ),
                    None,
                ));
            }
            reserved_ranges.push((r.start() as u32, (r.end() - 1) as u32));
        }

        let rust_name = self.type_name(full_name, msg.name());
        let wanted = ident::camel(msg.name());
        Ok(Message {
            proto_name: msg.name().to_owned(),
            full_name: full_name.to_owned(),
            renamed_from: (rust_name != wanted).then_some(wanted),
            rust_name,
            module_renamed_from: Some(ident::snake(msg.name())).filter(|w| *w != module_name),
            module_name,
            fields,
            oneofs,
            nested_messages,
            nested_enums,
            reserved_ranges,
            reserved_names: msg.reserved_name.clone(),
            comments: self.comments(&path),
            deprecated: msg.options.as_ref().is_some_and(|o| o.deprecated()),
            keep_unknown: self.config.unknown_fields,
            extendable,
            extensions,
            reaches_required: self.index.reaches_required.contains(full_name),
            attributes: attributes_for(&self.config.type_attributes, full_name),
        })
    }

    fn field(
        &self,
        parent_full: &str,
        f: &FieldDescriptorProto,
        scope: &[RustIdent],
        (path, parent_features): (&[i32], Features),
    ) -> Result<Field, Error> {
        let features = parent_features.with(f.options.as_ref().and_then(|o| o.features.as_ref()));
        // protox and protoc check this; a descriptor set from elsewhere may not have.
        if !(1..=MAX_FIELD_NUMBER).contains(&f.number()) {
            return Err(self.error(
                path,
                format!(
                    "field number {} of '{}' is out of range: field numbers go from 1 to {MAX_FIELD_NUMBER}",
                    f.number(),
                    f.name()
                ),
                None,
            ));
        }
        // Our descriptor types keep any number a field's type or label holds (as protobuf's
        // closed enums do on the wire, it stays unknown); one that is none is an error here.
        if f.r#type().name().is_none() || f.label().name().is_none() {
            return Err(self.error(
                path,
                format!(
                    "field '{}' has type {} and label {}, which protobuf does not define",
                    f.name(),
                    f.r#type().0,
                    f.label().0
                ),
                None,
            ));
        }
        let repeated = f.label() == Label::REPEATED;
        let kind = match f.r#type() {
            Type::MESSAGE | Type::GROUP => {
                let full = f.type_name().trim_start_matches('.');
                let entry = self
                    .index
                    .get(full)
                    .and_then(|info| info.map_entry.as_ref());
                let recursive = self
                    .index
                    .recursive
                    .contains(&(parent_full.to_owned(), f.number()));
                match entry {
                    Some((key, value)) if repeated => {
                        let mut kind = self.map_kind(key, value, scope, path)?;
                        if let FieldKind::Map {
                            value: MapValue::Message(ty),
                            ..
                        } = &mut kind
                        {
                            ty.recursive = recursive;
                        }
                        kind
                    }
                    _ => {
                        let mut ty = self.type_ref(f.type_name(), scope, path)?;
                        ty.recursive = recursive;
                        let boxed = !repeated
                            && self
                                .index
                                .boxed
                                .contains(&(parent_full.to_owned(), f.number()));
                        // Editions write a group as a message field encoded `DELIMITED`.
                        if f.r#type() == Type::GROUP || features.delimited {
                            FieldKind::Group { ty, boxed }
                        } else {
                            FieldKind::Message { ty, boxed }
                        }
                    }
                }
            }
            Type::ENUM => FieldKind::Enum(self.type_ref(f.type_name(), scope, path)?),
            other => FieldKind::Scalar(scalar(other)),
        };
        // `bytes` fields under a configured path hold `bytes::Bytes`.
        let shared = |s: Scalar| match s {
            Scalar::Bytes => Scalar::SharedBytes,
            other => other,
        };
        let field_full = qualify(parent_full, f.name());
        let kind = if path_matches(&self.config.bytes_paths, &field_full) {
            match kind {
                FieldKind::Scalar(s) => FieldKind::Scalar(shared(s)),
                FieldKind::Map {
                    key,
                    value: MapValue::Scalar(v),
                } => FieldKind::Map {
                    key,
                    value: MapValue::Scalar(shared(v)),
                },
                other => other,
            }
        } else {
            kind
        };
        let packable = match &kind {
            FieldKind::Scalar(s) => s.is_packable(),
            FieldKind::Enum(_) => true,
            _ => false,
        };
        let cardinality = if repeated {
            if matches!(kind, FieldKind::Map { .. }) {
                Cardinality::Repeated { packed: false }
            } else {
                let explicit = f.options.as_ref().and_then(|o| o.packed);
                Cardinality::Repeated {
                    packed: packable && explicit.unwrap_or(features.packed),
                }
            }
        } else if f.label() == Label::REQUIRED || features.presence == Presence::Required {
            Cardinality::Required
        } else if features.presence == Presence::Implicit
            && !f.proto3_optional()
            && !matches!(kind, FieldKind::Message { .. } | FieldKind::Group { .. })
            && f.oneof_index.is_none()
        {
            Cardinality::Implicit
        } else {
            Cardinality::Optional
        };
        let default = match &f.default_value {
            Some(text) => Some(self.default_value(f, &kind, text, path)?),
            // protoc writes a string default that is not UTF-8 as it is; our descriptor types
            // keep such a value with the unknown fields rather than in `default_value`.
            None if has_unknown_default(f) => {
                return Err(self.error(
                    path,
                    format!(
                        "the default value of field '{}' is not UTF-8, which a Rust `String` \
                         cannot hold",
                        f.name()
                    ),
                    Some("declare the field `bytes`, or give it a UTF-8 default".to_owned()),
                ));
            }
            None => None,
        };
        Ok(Field {
            proto_name: f.name().to_owned(),
            rust_name: ident::snake(f.name()),
            getter_name: ident::snake(f.name()),
            renamed_from: None,
            getter_renamed_from: None,
            number: f.number() as u32,
            json_name: f.json_name().to_owned(),
            kind,
            cardinality,
            validate_utf8: features.validate_utf8,
            default,
            comments: self.comments(path),
            deprecated: f.options.as_ref().is_some_and(|o| o.deprecated()),
            attributes: attributes_for(&self.config.field_attributes, &field_full),
        })
    }

    fn map_kind(
        &self,
        key: &FieldDescriptorProto,
        value: &FieldDescriptorProto,
        scope: &[RustIdent],
        path: &[i32],
    ) -> Result<FieldKind, Error> {
        let key = scalar(key.r#type());
        let value = match value.r#type() {
            Type::MESSAGE => MapValue::Message(self.type_ref(value.type_name(), scope, path)?),
            Type::ENUM => MapValue::Enum(self.type_ref(value.type_name(), scope, path)?),
            Type::GROUP => {
                return Err(self.error(path, "map values cannot be groups".to_owned(), None));
            }
            other => MapValue::Scalar(scalar(other)),
        };
        Ok(FieldKind::Map { key, value })
    }

    fn default_value(
        &self,
        f: &FieldDescriptorProto,
        kind: &FieldKind,
        text: &str,
        path: &[i32],
    ) -> Result<DefaultValue, Error> {
        let bad = || {
            self.error(
                path,
                format!(
                    "default value '{text}' of field '{}' does not fit its type",
                    f.name()
                ),
                None,
            )
        };
        let value = match kind {
            FieldKind::Scalar(s) => match s {
                Scalar::Bool => DefaultValue::Bool(text.parse().map_err(|_| bad())?),
                Scalar::Int32 | Scalar::SInt32 | Scalar::SFixed32 => {
                    DefaultValue::I32(text.parse().map_err(|_| bad())?)
                }
                Scalar::Int64 | Scalar::SInt64 | Scalar::SFixed64 => {
                    DefaultValue::I64(text.parse().map_err(|_| bad())?)
                }
                Scalar::UInt32 | Scalar::Fixed32 => {
                    DefaultValue::U32(text.parse().map_err(|_| bad())?)
                }
                Scalar::UInt64 | Scalar::Fixed64 => {
                    DefaultValue::U64(text.parse().map_err(|_| bad())?)
                }
                Scalar::Float => DefaultValue::F32(parse_float(text).ok_or_else(bad)? as f32),
                Scalar::Double => DefaultValue::F64(parse_float(text).ok_or_else(bad)?),
                Scalar::String => DefaultValue::String(text.to_owned()),
                Scalar::Bytes | Scalar::SharedBytes => {
                    DefaultValue::Bytes(unescape_c(text).ok_or_else(bad)?)
                }
            },
            FieldKind::Enum(ty) => {
                // The constant the enum's own code names this value by: names are decided
                // once, so a default cannot pick a constant another value was given.
                let constant = self
                    .index
                    .get(&ty.full_name)
                    .and_then(|info| info.enum_constants.iter().find(|(proto, _)| proto == text))
                    .map(|(_, rust)| rust.clone())
                    .ok_or_else(bad)?;
                DefaultValue::Enum {
                    ty: ty.rust_path.clone(),
                    constant,
                }
            }
            _ => return Err(bad()),
        };
        Ok(value)
    }

    fn service(
        &self,
        service: &ServiceDescriptorProto,
        scope: &[RustIdent],
        path: Vec<i32>,
    ) -> Result<Service, Error> {
        let full_name = qualify(self.file.package(), service.name());
        let names = method_names(service);
        let mut methods = Vec::new();
        for ((index, m), (rust_name, erased_name)) in service.method.iter().enumerate().zip(names) {
            let mut method_path = path.clone();
            method_path.extend([SERVICE_METHOD, index as i32]);
            let wanted = ident::snake(m.name());
            methods.push(Method {
                proto_name: m.name().to_owned(),
                renamed_from: (wanted != rust_name).then_some(wanted),
                erased_name,
                rust_name,
                index,
                input: self.type_ref(m.input_type(), scope, &method_path)?,
                output: self.type_ref(m.output_type(), scope, &method_path)?,
                client_streaming: m.client_streaming(),
                server_streaming: m.server_streaming(),
                comments: self.comments(&method_path),
                deprecated: m.options.as_ref().is_some_and(|o| o.deprecated()),
            });
        }
        let (rust_name, items, descriptor_name) = self
            .index
            .services
            .get(&full_name)
            .cloned()
            .ok_or_else(|| Error::internal(format!("service {full_name} was not indexed")))?;
        let wanted = ident::fit_file_name(ident::camel(service.name()));
        Ok(Service {
            proto_name: service.name().to_owned(),
            full_name,
            renamed_from: (wanted != rust_name).then_some(wanted),
            rust_name,
            items,
            descriptor_name,
            methods,
            comments: self.comments(&path),
            deprecated: service.options.as_ref().is_some_and(|o| o.deprecated()),
        })
    }

    fn enumeration(&self, e: &EnumDescriptorProto, full_name: &str, path: Vec<i32>) -> Enum {
        let values = enum_value_names(e)
            .into_iter()
            .zip(&e.value)
            .enumerate()
            .map(|(i, (name, v))| {
                let mut value_path = path.clone();
                value_path.extend([ENUM_VALUE, i as i32]);
                let wanted = ident::enum_value(e.name(), v.name());
                EnumValue {
                    proto_name: v.name().to_owned(),
                    renamed_from: (name.rust_name != wanted).then_some(wanted),
                    rust_name: name.rust_name,
                    number: v.number(),
                    alias_of: name.alias_of,
                    shares_const: name.shares_const,
                    comments: self.comments(&value_path),
                    deprecated: v.options.as_ref().is_some_and(|o| o.deprecated()),
                }
            })
            .collect();
        let rust_name = self.type_name(full_name, e.name());
        let wanted = ident::camel(e.name());
        Enum {
            proto_name: e.name().to_owned(),
            full_name: full_name.to_owned(),
            renamed_from: (rust_name != wanted).then_some(wanted),
            rust_name,
            values,
            comments: self.comments(&path),
            deprecated: e.options.as_ref().is_some_and(|o| o.deprecated()),
            attributes: attributes_for(&self.config.type_attributes, full_name),
        }
    }
}

/// Methods a message value has from the traits it implements or derives (`Message`, `Name`,
/// `Clone`, `Default`, `Debug`, `PartialEq`), beside [`EVERY_TYPE_METHOD_NAMES`]: a getter of one
/// of these names would hide the trait's in method-call and path syntax. A closed list, so that a
/// method added to the runtime later does not rename users' getters.
const MESSAGE_METHOD_NAMES: &[&str] = &[
    "encoded_len",
    "encode_raw",
    "merge_from",
    "encode",
    "encode_to_vec",
    "encode_to_bytes",
    "try_encode_to_bytes",
    "encode_length_delimited",
    "merge",
    "merge_bytes",
    "clear",
    "decode",
    "decode_bytes",
    "decode_length_delimited",
    "is_initialized",
    "missing_required_fields",
    "collect_missing_required",
    "type_url",
    "clone",
    "clone_from",
    "default",
    "fmt",
    "eq",
    "ne",
];

/// The methods of `rust_rpc::Extendable`, which messages with extension ranges implement: their
/// getters keep off these names too.
const EXTENDABLE_METHOD_NAMES: &[&str] = &[
    "unknown_fields",
    "unknown_fields_mut",
    "extension",
    "has_extension",
    "set_extension",
    "clear_extension",
];

/// `name` with `_` appended (a raw identifier loses its `r#`, which it no longer needs).
/// Decides the names of a message's struct fields (its fields, its oneofs, and
/// `unknown_fields` when kept) and of its getters: a name already taken gets `_` appended
/// until it is free, in declaration order (`foo_bar` and `fooBar`, `self` and `self_`); a
/// getter named like a method of [`MESSAGE_METHOD_NAMES`] or another getter does too.
fn name_members(fields: &mut [Field], oneofs: &mut [Oneof], keep_unknown: bool, extendable: bool) {
    let mut taken: HashSet<RustIdent> = HashSet::new();
    if keep_unknown {
        taken.insert(ident::escape("unknown_fields"));
    }
    // Each struct member's name and whether the `.proto` spells it so: those named as written
    // first, then the others; fields before oneofs, each in declaration order.
    let mut members: Vec<(&str, &mut RustIdent, &mut Option<RustIdent>)> = fields
        .iter_mut()
        .map(|f| (f.proto_name.as_str(), &mut f.rust_name, &mut f.renamed_from))
        .chain(oneofs.iter_mut().map(|o| {
            (
                o.proto_name.as_str(),
                &mut o.rust_field,
                &mut o.field_renamed_from,
            )
        }))
        .collect();
    members.sort_by_key(|(proto_name, name, _)| !name.spells(proto_name));
    for (_, name, renamed_from) in members {
        let wanted = name.clone();
        *name = ident::claim_in(&mut taken, wanted.clone());
        if *name != wanted {
            *renamed_from = Some(wanted);
        }
    }
    let extension_methods = if extendable {
        EXTENDABLE_METHOD_NAMES
    } else {
        &[]
    };
    let mut getters: HashSet<RustIdent> = MESSAGE_METHOD_NAMES
        .iter()
        .chain(EVERY_TYPE_METHOD_NAMES)
        .chain(extension_methods)
        .map(|&n| ident::escape(n))
        .collect();
    for field in fields.iter_mut() {
        let name = ident::claim_in(&mut getters, field.rust_name.clone());
        if name != field.rust_name {
            field.getter_renamed_from = Some(field.rust_name.clone());
        }
        field.getter_name = name;
    }
}

/// Names a service's methods take on its trait, stub, client and `Dyn` form: the rpc's name
/// in snake case, with `_` appended when it is one of [`RESERVED_METHOD_NAMES`] or already
/// taken by another rpc of the service (`get` and `Get`: names written as they come out
/// first, then in declaration order); and beside each, its name on the object-safe trait
/// (`erased_get`), `_` appended while taken there.
fn method_names(service: &ServiceDescriptorProto) -> Vec<(RustIdent, RustIdent)> {
    let mut order: Vec<usize> = (0..service.method.len()).collect();
    order.sort_by_key(|&i| {
        let name = service.method[i].name();
        !ident::snake(name).spells(name)
    });
    let mut taken: HashSet<RustIdent> = HashSet::new();
    let mut erased_taken: HashSet<RustIdent> = HashSet::new();
    let mut names = vec![None; service.method.len()];
    for i in order {
        let mut name = ident::snake(service.method[i].name());
        if RESERVED_METHOD_NAMES
            .iter()
            .chain(EVERY_TYPE_METHOD_NAMES)
            .any(|&n| name == n)
        {
            name = name.underscored();
        }
        let name = ident::claim_in(&mut taken, name);
        // `erased_` and the name without leading underscores, which would make `__`.
        let erased = ident::claim_in(
            &mut erased_taken,
            ident::escape(&format!("erased_{}", name.unraw().trim_start_matches('_'))),
        );
        names[i] = Some((name, erased));
    }
    names.into_iter().flatten().collect()
}

/// Method names a generated service type already has, which an rpc of the same name would
/// shadow or duplicate: the client's and stub's own (`new`, `channel`) and those of the traits
/// they derive (`Clone`, `Debug`), beside [`EVERY_TYPE_METHOD_NAMES`]. A closed list: a method added to the
/// runtime later does not rename anyone's rpc.
pub(crate) const RESERVED_METHOD_NAMES: &[&str] = &["new", "channel", "clone", "clone_from", "fmt"];

/// Methods every type has through blanket implementations (`ToOwned`, `Into`, `TryInto`,
/// `From`, `TryFrom`, `Borrow`, `BorrowMut`, `Any`), reserved beside both lists above.
const EVERY_TYPE_METHOD_NAMES: &[&str] = &[
    "to_owned",
    "clone_into",
    "into",
    "try_into",
    "from",
    "try_from",
    "borrow",
    "borrow_mut",
    "type_id",
];

/// How one enum value is named in Rust.
struct ValueName {
    rust_name: RustIdent,
    /// The constant of the value declared first with the same number, for an alias.
    alias_of: Option<RustIdent>,
    /// An alias whose name folds onto another's gets no constant of its own.
    shares_const: bool,
}

/// The Rust constants of an enum's values, decided once: the prefix-stripped name, else the
/// full name, else (for an alias) the original's constant, else a numbered name. Values whose
/// constant is their own name as written (`B`, not `E_B` stripped to `B`) are named first, the
/// others after them, each group in declaration order.
fn enum_value_names(e: &EnumDescriptorProto) -> Vec<ValueName> {
    let wanted: Vec<RustIdent> = e
        .value
        .iter()
        .map(|v| ident::enum_value(e.name(), v.name()))
        .collect();
    let mut order: Vec<usize> = (0..e.value.len()).collect();
    order.sort_by_key(|&i| !wanted[i].spells(e.value[i].name()));
    // The first value declared with each number: the original an alias may share.
    let mut first: HashMap<i32, usize> = HashMap::new();
    for (i, v) in e.value.iter().enumerate() {
        first.entry(v.number()).or_insert(i);
    }
    // The generated list of values shares the namespace of the constants.
    let mut taken: HashSet<RustIdent> = HashSet::from([ident::escape("VALUES")]);
    // The number of each constant made so far.
    let mut numbers: HashMap<RustIdent, i32> = HashMap::new();
    let mut names: Vec<Option<(RustIdent, bool)>> = vec![None; e.value.len()];
    for i in order {
        let v = &e.value[i];
        let original = first.get(&v.number()).copied().filter(|&o| o != i);
        let mut rust_name = wanted[i].clone();
        let mut shares_const = false;
        if taken.contains(&rust_name) {
            // Stripping the prefix made two names equal; try the full name.
            rust_name = ident::shouty(v.name());
        }
        if taken.contains(&rust_name) {
            // An alias whose name folds onto another one of its number (`moo` beside `MOO`)
            // gets no constant of its own and shares that one; `from_name` still knows it.
            let folded = (numbers.get(&rust_name) == Some(&v.number())).then(|| rust_name.clone());
            let shared = folded.or_else(|| {
                original
                    .and_then(|o| names[o].as_ref())
                    .map(|(constant, _)| constant.clone())
            });
            match shared {
                Some(constant) => {
                    rust_name = constant;
                    shares_const = true;
                }
                None => {
                    let base = rust_name.clone();
                    let mut n = 2;
                    while taken.contains(&rust_name) {
                        rust_name = base.numbered(n);
                        n += 1;
                    }
                }
            }
        }
        taken.insert(rust_name.clone());
        numbers.entry(rust_name.clone()).or_insert(v.number());
        names[i] = Some((rust_name, shares_const));
    }
    let names: Vec<(RustIdent, bool)> = names.into_iter().flatten().collect();
    e.value
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let original = first.get(&v.number()).copied().filter(|&o| o != i);
            ValueName {
                rust_name: names[i].0.clone(),
                alias_of: original.map(|o| names[o].0.clone()),
                shares_const: names[i].1,
            }
        })
        .collect()
}

/// Each value's proto name and its Rust constant.
fn enum_constants(e: &EnumDescriptorProto) -> Vec<(String, RustIdent)> {
    e.value
        .iter()
        .zip(enum_value_names(e))
        .map(|(v, name)| (v.name().to_owned(), name.rust_name))
        .collect()
}

/// Whether `f` carries a `default_value` (field 7) that did not decode as a string, kept with
/// its unknown fields.
fn has_unknown_default(f: &FieldDescriptorProto) -> bool {
    let mut r = rust_rpc::encoding::Reader::new(f.unknown_fields.as_bytes());
    while let Ok(Some(tag)) = r.next_tag() {
        if tag >> 3 == 7 {
            return true;
        }
        if r.skip_field(tag).is_err() {
            break;
        }
    }
    false
}

fn scalar(ty: Type) -> Scalar {
    match ty {
        Type::DOUBLE => Scalar::Double,
        Type::FLOAT => Scalar::Float,
        Type::INT64 => Scalar::Int64,
        Type::UINT64 => Scalar::UInt64,
        Type::INT32 => Scalar::Int32,
        Type::FIXED64 => Scalar::Fixed64,
        Type::FIXED32 => Scalar::Fixed32,
        Type::BOOL => Scalar::Bool,
        Type::STRING => Scalar::String,
        Type::BYTES => Scalar::Bytes,
        Type::UINT32 => Scalar::UInt32,
        Type::SFIXED32 => Scalar::SFixed32,
        Type::SFIXED64 => Scalar::SFixed64,
        Type::SINT32 => Scalar::SInt32,
        Type::SINT64 => Scalar::SInt64,
        // Message, group and enum types never reach here, nor does a number that is no type:
        // `lower` rejects it first (see `FileLowerer::field`).
        _ => Scalar::Bytes,
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Undoes the C escaping protoc applies to `bytes` defaults (`\n`, `\001`, `\x7f`, ...).
fn unescape_c(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        let c = *bytes.get(i)?;
        i += 1;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' | b'?' => out.push(c),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value).ok()?);
            }
            b'x' | b'X' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match bytes.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    return None;
                }
                out.push(value as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_and_descend() {
        let s = |v: &[&str]| v.iter().map(|x| ident::snake(x)).collect::<Vec<_>>();
        let path = |scope: &[&str], target: &[&str]| {
            relative_path(&s(scope), &s(target), &ident::camel("X")).to_string()
        };
        assert_eq!(path(&["a"], &["a"]), "X");
        assert_eq!(path(&["a", "m"], &["a"]), "super::X");
        assert_eq!(path(&["a"], &["b", "c"]), "super::b::c::X");
        assert_eq!(path(&[], &["b"]), "b::X");
        assert_eq!(path(&["a"], &["type"]), "super::r#type::X");
    }

    #[test]
    fn c_escapes_in_bytes_defaults() {
        assert_eq!(unescape_c(r"a\001\x7f\n\\").unwrap(), b"a\x01\x7f\n\\");
        assert_eq!(unescape_c(r"\377").unwrap(), [0xff]);
        assert!(unescape_c(r"\q").is_none());
        assert!(unescape_c("\\").is_none());
    }

    #[test]
    fn cycles_are_found_and_chains_are_not() {
        let mut edges = HashMap::new();
        edges.insert("A".to_owned(), vec![(1, "B".to_owned())]);
        edges.insert(
            "B".to_owned(),
            vec![(1, "A".to_owned()), (2, "C".to_owned())],
        );
        edges.insert("C".to_owned(), vec![]);
        edges.insert("D".to_owned(), vec![(3, "D".to_owned())]);
        let boxed = boxed_fields(&edges);
        assert!(boxed.contains(&("A".to_owned(), 1)));
        assert!(boxed.contains(&("B".to_owned(), 1)));
        assert!(!boxed.contains(&("B".to_owned(), 2)));
        assert!(boxed.contains(&("D".to_owned(), 3)));
    }
}
