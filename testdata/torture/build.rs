//! Writes the torture set's `.proto` files into `OUT_DIR/protos` and generates them with the
//! builder: each name of [`NAMES`] as a package, a message, a nested message, a field (proto2
//! and proto3), a oneof, a oneof's field, an enum, an enum value, a service and an rpc.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Rust's keywords (strict, reserved and weak), the prelude's names, the methods generated
/// types have from their traits or by convention, primitive and crate names, and names that
/// differ only in case or underscores.
const NAMES: &[&str] = &[
    // Keywords.
    "as",
    "break",
    "const",
    "continue",
    "crate",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "async",
    "await",
    "dyn",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "union",
    "macro_rules",
    "raw",
    "safe",
    // The prelude and the runtime's traits.
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Vec",
    "String",
    "Box",
    "ToString",
    "ToOwned",
    "Clone",
    "Copy",
    "Default",
    "Debug",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "Iterator",
    "IntoIterator",
    "Extend",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "TryFrom",
    "TryInto",
    "Message",
    "Name",
    "Bytes",
    // Methods of traits and conventions.
    "clone",
    "clone_from",
    "default",
    "fmt",
    "eq",
    "ne",
    "encoded_len",
    "encode",
    "decode",
    "merge",
    "clear",
    "into",
    "try_into",
    "from",
    "try_from",
    "borrow",
    "borrow_mut",
    "to_owned",
    "to_string",
    "type_id",
    "hash",
    "cmp",
    "partial_cmp",
    "as_ref",
    "new",
    "unknown_fields",
    "encode_to_vec",
    "decode_bytes",
    "into_value",
    "from_value",
    "to_value",
    "as_value",
    "is_value",
    "next",
    "add",
    "sub",
    "neg",
    "not",
    "deref",
    "index",
    "from_str",
    "from_iter",
    "into_iter",
    "drop",
    "channel",
    // Primitive types and crates.
    "i32",
    "i64",
    "u8",
    "u32",
    "u64",
    "bool",
    "str",
    "char",
    "f32",
    "f64",
    "usize",
    "isize",
    "std",
    "core",
    "alloc",
    "rust_rpc",
    // Names that differ only in case or underscores.
    "HTTPServer",
    "HttpServer",
    "a_b_c",
    "aBC",
    "x",
    "X",
    "foo_bar",
    "fooBar",
    "FooBar",
    "foo__bar",
    "_foo",
    "foo_",
    // The type parameters of generated impls (services, JSON), a package named like its parent
    // (`torture.pkg.pkg`), and a getter clippy expects an `is_empty` beside.
    "C",
    "T",
    "A",
    "S",
    "D",
    "pkg",
    "len",
];

/// The names whose fields can share one proto3 message: protoc rejects two proto3 fields
/// whose names are equal once lower-cased without underscores.
fn proto3_field_names() -> Vec<&'static str> {
    let mut seen = std::collections::HashSet::new();
    NAMES
        .iter()
        .copied()
        .filter(|n| seen.insert(n.to_lowercase().replace('_', "")))
        .collect()
}

fn file(dir: &Path, name: &str, package: &str, syntax: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!("syntax = \"{syntax}\";\npackage {package};\n\n{body}");
    std::fs::write(&path, text).expect("write a torture .proto");
    path
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("protos");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/protos");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();

    // A comment with characters that turn text right to left, which rustc denies in docs,
    // and markdown that would run as a doctest if taken for Rust code: a fence right after an
    // indented block, fences in list items, a `1)` list with a lazy line, a lazy line after
    // a list item's second paragraph.
    let mut body = String::from(concat!(
        "// Right to left: \u{202E}abc\u{202C}, isolated: \u{2067}d\u{2069}.\n",
        "//\n//     indented\n// ```\n// ```\n// panic!(\"a fence after an indented block ran\");\n",
        "//\n// - ```\n//   panic!(\"a fence in a list item ran\");\n",
        "//\n// * ~~~\n//   panic!(\"a tilde fence in a list item ran\");\n",
        "//\n// 1) item\n// lazy\n",
        "//\n// - item\n//\n//   its second paragraph\n// lazy\n",
    ));
    for n in NAMES {
        writeln!(body, "message {n} {{ int32 v = 1; }}").unwrap();
    }
    // Every message named from the module it is in, where generated code names it bare.
    body.push_str("message Refs {\n");
    for (i, n) in NAMES.iter().enumerate() {
        writeln!(body, "  .torture.messages.{n} r{i} = {};", i + 1).unwrap();
    }
    body.push_str("}\n");
    files.push(file(
        &dir,
        "messages.proto",
        "torture.messages",
        "proto3",
        &body,
    ));

    let mut body = String::from("message Outer {\n");
    for (i, n) in NAMES.iter().enumerate() {
        writeln!(body, "  message {n} {{ int32 v = 1; }}").unwrap();
        writeln!(body, "  .torture.nested.Outer.{n} field_{i} = {};", i + 1).unwrap();
    }
    body.push_str("}\n");
    files.push(file(
        &dir,
        "nested.proto",
        "torture.nested",
        "proto3",
        &body,
    ));

    let mut body = String::from("message Fields {\n");
    for (i, n) in proto3_field_names().iter().enumerate() {
        writeln!(body, "  int32 {n} = {};", i + 1).unwrap();
    }
    body.push_str("}\n");
    files.push(file(
        &dir,
        "fields.proto",
        "torture.fields",
        "proto3",
        &body,
    ));

    let mut body = String::from("message OneofFields {\n  oneof choice {\n");
    for (i, n) in proto3_field_names().iter().enumerate() {
        writeln!(body, "    int32 {n} = {};", i + 1).unwrap();
    }
    body.push_str("  }\n}\n");
    files.push(file(
        &dir,
        "oneof_fields.proto",
        "torture.oneof_fields",
        "proto3",
        &body,
    ));

    let mut body = String::from("message Oneofs {\n");
    for (i, n) in NAMES.iter().enumerate() {
        writeln!(body, "  oneof {n} {{ int32 o{i} = {}; }}", i + 1).unwrap();
    }
    body.push_str("}\n");
    files.push(file(
        &dir,
        "oneofs.proto",
        "torture.oneofs",
        "proto3",
        &body,
    ));

    let mut body = String::new();
    for n in NAMES {
        writeln!(body, "enum {n} {{ {n}_ZERO = 0; }}").unwrap();
    }
    body.push_str("message Refs {\n");
    for (i, n) in NAMES.iter().enumerate() {
        writeln!(body, "  .torture.enums.{n} r{i} = {};", i + 1).unwrap();
    }
    body.push_str("}\n");
    files.push(file(&dir, "enums.proto", "torture.enums", "proto3", &body));

    // protoc rejects enum values whose names are equal ignoring case (an error in either
    // syntax since protobuf 26, where protox takes them): one of each.
    let mut body = String::from("enum Values {\n  VALUES_ZERO = 0;\n");
    for (i, n) in proto3_field_names().iter().enumerate() {
        writeln!(body, "  {n} = {};", i + 1).unwrap();
    }
    body.push_str("}\nmessage HasValue { Values value = 1; }\n");
    files.push(file(
        &dir,
        "values.proto",
        "torture.values",
        "proto3",
        &body,
    ));

    let mut body = String::from("message Req { int32 v = 1; }\n");
    for n in NAMES {
        writeln!(body, "service {n} {{ rpc Call(Req) returns (Req); }}").unwrap();
    }
    files.push(file(
        &dir,
        "services.proto",
        "torture.services",
        "proto3",
        &body,
    ));

    let mut body = String::from("message Req { int32 v = 1; }\nservice Rpcs {\n");
    for n in NAMES {
        writeln!(body, "  rpc {n}(Req) returns (Req);").unwrap();
    }
    body.push_str("}\n");
    files.push(file(&dir, "rpcs.proto", "torture.rpcs", "proto3", &body));

    for n in NAMES {
        files.push(file(
            &dir,
            &format!("pkg_{n}.proto"),
            &format!("torture.pkg.{n}"),
            "proto3",
            "message M { int32 v = 1; }\n",
        ));
    }

    // Names longer than a file name may be, in every place rustdoc writes a page for: a
    // package, a message and its module, a nested message, enums, a oneof, a service and an
    // extension.
    let long = |word: &str| word.repeat(300 / word.len());
    let (camel, snake) = (long("Long"), long("long_"));
    let body = format!(
        "import \"google/protobuf/descriptor.proto\";\n\
         message {camel} {{\n  message Inner{camel} {{ int32 v = 1; }}\n  \
         enum Enum{camel} {{ ZERO = 0; }}\n  \
         oneof {snake}oneof {{ int32 a = 1; }}\n  Inner{camel} inner = 2;\n  \
         Enum{camel} e = 3;\n}}\n\
         enum Top{camel} {{ TOP_ZERO = 0; }}\n\
         service Svc{camel} {{ rpc Call{camel}({camel}) returns ({camel}); }}\n\
         extend google.protobuf.FieldOptions {{ int32 {snake}ext = 50001; }}\n"
    );
    files.push(file(
        &dir,
        "long.proto",
        &format!("torture.{snake}pkg"),
        "proto3",
        &body,
    ));

    // How many fields each message of the data tests has, for `tests/`.
    let counts = format!(
        "/// Names in the set.\npub const NAMES: usize = {};\n/// Fields of `torture.fields.Fields` and `torture.oneof_fields.OneofFields`.\npub const PROTO3_FIELDS: usize = {};\n",
        NAMES.len(),
        proto3_field_names().len()
    );
    std::fs::write(out.join("counts.rs"), counts).expect("write counts.rs");

    rust_rpc_compiler::Builder::new()
        .json(true)
        .text(true)
        .out_dir(out.join("protox"))
        .compile(&files, &[&dir])
        .expect("the torture set generates through protox");

    // Every name as a proto2 field, all in one message: protoc only warns of the fields that
    // share a JSON name, protox rejects them, so protoc reads this one.
    let mut body = String::from("message Fields {\n");
    for (i, n) in NAMES.iter().enumerate() {
        writeln!(body, "  optional int32 {n} = {};", i + 1).unwrap();
    }
    body.push_str("}\n");
    let proto2 = file(&dir, "fields2.proto", "torture.fields2", "proto2", &body);
    rust_rpc_compiler::Builder::new()
        .json(true)
        .text(true)
        .out_dir(out.join("protoc"))
        .protoc(protoc_bin_vendored::protoc_bin_path().expect("vendored protoc"))
        .compile(&[proto2], &[&dir])
        .expect("the proto2 torture file generates through protoc");
}
