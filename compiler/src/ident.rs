//! Proto names to Rust identifiers: case conversion and keyword escaping, in one place.

use std::collections::HashSet;
use std::fmt;

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, TokenStreamExt};

/// A Rust identifier as generated code spells it (`foo`, `r#type`, `Self_`, `Unnamed1`).
///
/// Only this module makes one, from a proto name or from parts that are already identifiers,
/// so every value is a valid, escaped identifier; `lower` decides each name once as one of
/// these and `emit` writes it as a token, never parsing text. It reads as its text (`Deref` to
/// `str`, with the raw prefix), and cannot be changed in place: a rename makes a new one
/// ([`RustIdent::underscored`], [`RustIdent::numbered`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RustIdent(String);

impl RustIdent {
    /// The name without a raw prefix (`type` for `r#type`): for docs and for building others.
    pub fn unraw(&self) -> &str {
        self.0.strip_prefix("r#").unwrap_or(&self.0)
    }

    /// The name with `_` appended, the rename rule for a taken name (`r#type` -> `type_`).
    pub fn underscored(&self) -> RustIdent {
        RustIdent(format!("{}_", self.unraw()))
    }

    /// Whether the `.proto` spells this name as it is (`foo_` for `foo_`, `Foo` for `Foo`, but
    /// not `Foo` for `foo` nor `self_` for `self`): such names are claimed first.
    pub fn spells(&self, proto_name: &str) -> bool {
        self.unraw() == proto_name
    }

    /// The name with `_` and `n` appended, the rename rule for enum constants (`B_2`).
    pub fn numbered(&self, n: usize) -> RustIdent {
        RustIdent(format!("{}_{n}", self.unraw()))
    }

    /// The token for the name.
    pub fn to_ident(&self) -> proc_macro2::Ident {
        match self.0.strip_prefix("r#") {
            Some(raw) => proc_macro2::Ident::new_raw(raw, Span::call_site()),
            None => proc_macro2::Ident::new(&self.0, Span::call_site()),
        }
    }
}

impl std::ops::Deref for RustIdent {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Sets of names can be asked for a `&str` (`"VALUES"`): a `RustIdent` hashes as its text.
impl std::borrow::Borrow<str> for RustIdent {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RustIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for RustIdent {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RustIdent {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl ToTokens for RustIdent {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append(self.to_ident());
    }
}

/// `name`, with `_` appended while `taken` holds it: the rename rule for a taken name.
pub fn first_free(taken: &HashSet<RustIdent>, mut name: RustIdent) -> RustIdent {
    while taken.contains(&name) {
        name = name.underscored();
    }
    name
}

/// [`first_free`], and taken from then on.
pub fn claim_in(taken: &mut HashSet<RustIdent>, name: RustIdent) -> RustIdent {
    let name = first_free(taken, name);
    taken.insert(name.clone());
    name
}

/// A path to a type from the module that names it (`super::a::B`, `::rust_rpc::wkt::Any`),
/// made of [`RustIdent`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustPath {
    /// Whether the path starts at the crate root of another crate (`::rust_rpc::...`).
    pub global: bool,
    pub segments: Vec<RustIdent>,
}

impl RustPath {
    /// A path of identifiers decided here (`super`, `crate` and `self` included, which only
    /// this module writes as path segments).
    pub fn new(global: bool, segments: Vec<RustIdent>) -> RustPath {
        RustPath { global, segments }
    }

    /// A path from a user's option (`extern_path`), already checked by
    /// `options::check_rust_path`: `::`-separated identifiers, keywords written raw.
    pub fn parse_checked(text: &str) -> RustPath {
        let (global, rest) = match text.strip_prefix("::") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        RustPath {
            global,
            segments: rest.split("::").map(|s| RustIdent(s.to_owned())).collect(),
        }
    }
}

/// The path as generated code spells it (`super::a::B`, `::rust_rpc::wkt::Any`).
impl fmt::Display for RustPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 || self.global {
                f.write_str("::")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

impl ToTokens for RustPath {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let segments = &self.segments;
        if self.global {
            tokens.extend(quote::quote!(#(::#segments)*));
        } else {
            tokens.extend(quote::quote!(#(#segments)::*));
        }
    }
}

/// A path segment that is a keyword: `super`, `self` or `crate`, which name modules in paths.
pub fn path_keyword(word: &'static str) -> RustIdent {
    debug_assert!(["super", "self", "crate"].contains(&word));
    RustIdent(word.to_owned())
}

/// Keywords that are accepted as raw identifiers (`r#type`).
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; they get a trailing underscore instead.
const UNRAWABLE_KEYWORDS: &[&str] = &["crate", "self", "Self", "super", "_"];

/// Makes `name` usable as a Rust identifier, escaping keywords. `name` is made of ASCII
/// letters, digits and `_`, as proto names are (and names built from them).
pub fn escape(name: &str) -> RustIdent {
    RustIdent(if name.is_empty() {
        "unnamed".to_owned()
    } else if UNRAWABLE_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else if RAW_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_owned()
    })
}

/// A field, function or module name: `snake_case`, escaped.
/// A name already in snake case (`foo_bar`, `foo_`, `_x`) is kept as written, underscores
/// included, so names that differ only there stay apart (`foo` and `foo_`).
pub fn snake(name: &str) -> RustIdent {
    if in_case(name, |c| c.is_ascii_lowercase()) {
        return escape(name);
    }
    converted(name, name.to_snake_case(), Case::Snake)
}

/// Whether `name` already has the case whose letters `letter` accepts (lowercase for snake
/// case, uppercase for constants), as rustc's case lints read it: ASCII letters of that case,
/// digits and `_`, a letter or digit somewhere, no `__` between words, not a leading digit.
fn in_case(name: &str, letter: impl Fn(char) -> bool) -> bool {
    let inner = name.trim_matches('_');
    !inner.is_empty()
        && !inner.contains("__")
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c == '_' || c.is_ascii_digit() || letter(c))
}

#[derive(Clone, Copy)]
enum Case {
    Snake,
    Camel,
    Shouty,
}

/// Escapes a case-converted name. Case conversion drops underscores, so a proto name made only
/// of them (`_`, `__`) converts to nothing; it gets `unnamed` with its length, in the case
/// asked for (`unnamed_1`, `Unnamed2`, `UNNAMED_2`), distinct for `_` and `__`.
fn converted(original: &str, converted: String, case: Case) -> RustIdent {
    if converted.is_empty() {
        let fallback = format!("unnamed_{}", original.len());
        return escape(&match case {
            Case::Snake => fallback,
            Case::Camel => fallback.to_upper_camel_case(),
            Case::Shouty => fallback.to_shouty_snake_case(),
        });
    }
    escape(&converted)
}

/// A type name: `UpperCamelCase`, escaped.
pub fn camel(name: &str) -> RustIdent {
    converted(name, name.to_upper_camel_case(), Case::Camel)
}

/// `UpperCamelCase` to build other names on (`{base}Stub`), not escaped: `Self` stays `Self`,
/// so a service `Self` gets `SelfStub`, not `Self_Stub`.
pub fn camel_base(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    if camel.is_empty() {
        format!("Unnamed{}", name.len())
    } else {
        camel
    }
}

/// A constant name: `SHOUTY_SNAKE_CASE`, escaped.
/// As for [`snake`], a name already in this case (`FOO_`, `V__X` aside) is kept as written.
pub fn shouty(name: &str) -> RustIdent {
    if in_case(name, |c| c.is_ascii_uppercase()) {
        return escape(name);
    }
    converted(name, name.to_shouty_snake_case(), Case::Shouty)
}

/// The constant name of an enum value, with the enum's own name dropped from its front
/// (`COLOR_RED` in `Color` becomes `RED`) when what remains is still a valid name.
pub fn enum_value(enum_name: &str, value_name: &str) -> RustIdent {
    let prefix = enum_name.to_shouty_snake_case();
    let value = shouty(value_name);
    let stripped = value
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|rest| in_case(rest, |c| c.is_ascii_uppercase()) && !rest.starts_with('_'));
    match stripped {
        Some(rest) => escape(rest),
        None => value,
    }
}

/// Longest name of a module-level item kept as it is: rustdoc writes a file per item
/// (`struct.Name.html`, `name/index.html`) and file systems allow 255 bytes per name.
pub const MAX_ITEM_NAME: usize = 200;

/// `name`, or for a name longer than [`MAX_ITEM_NAME`] its first 160 bytes and the decimal
/// FNV-1a hash of the whole, so every item keeps a name of its own and a page in the docs.
/// Digits fit every case convention: `_` joins them only to names that already hold one.
pub fn fit_file_name(name: RustIdent) -> RustIdent {
    if name.len() <= MAX_ITEM_NAME {
        return name;
    }
    let name = name.unraw();
    let mut cut = 160;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let join = if name.contains('_') { "_" } else { "" };
    let kept = name[..cut].trim_end_matches('_');
    RustIdent(format!("{kept}{join}{}", fnv1a(name.as_bytes())))
}

/// FNV-1a, 64 bits: a short, stable stand-in for a long name.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_raw_keyword_is_escaped_and_parses() {
        for kw in RAW_KEYWORDS {
            let escaped = escape(kw);
            assert_eq!(*escaped, format!("r#{kw}"));
            syn::parse_str::<syn::Ident>(&escaped).unwrap_or_else(|e| panic!("{escaped}: {e}"));
        }
    }

    #[test]
    fn unrawable_keywords_get_an_underscore() {
        for kw in UNRAWABLE_KEYWORDS {
            let escaped = escape(kw);
            assert_eq!(*escaped, format!("{kw}_"));
            syn::parse_str::<syn::Ident>(&escaped).unwrap_or_else(|e| panic!("{escaped}: {e}"));
        }
    }

    #[test]
    fn case_conversion() {
        assert_eq!(snake("FooBar"), "foo_bar");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("Self"), "self_");
        assert_eq!(camel("foo_bar"), "FooBar");
        assert_eq!(camel("HTTPRequest"), "HttpRequest");
        assert_eq!(camel("self"), "Self_");
        assert_eq!(shouty("fooBar"), "FOO_BAR");
    }

    #[test]
    fn names_already_in_case_are_kept_with_their_underscores() {
        assert_eq!(snake("foo_"), "foo_");
        assert_eq!(snake("_x"), "_x");
        assert_eq!(snake("foo__bar"), "foo_bar");
        assert_eq!(snake("fooBar"), "foo_bar");
        assert_eq!(shouty("V_"), "V_");
        assert_eq!(shouty("V__"), "V__");
        assert_eq!(shouty("V__X"), "V_X");
        assert_eq!(enum_value("Color", "COLOR_"), "COLOR_");
        assert_eq!(enum_value("Color", "COLOR__RED"), "RED");
        assert_eq!(enum_value("Color", "COLOR_red"), "RED");
    }

    #[test]
    fn names_of_underscores_only_still_get_distinct_identifiers() {
        assert_eq!(snake("_"), "unnamed_1");
        assert_eq!(snake("__"), "unnamed_2");
        assert_eq!(camel("_"), "Unnamed1");
        assert_eq!(shouty("__"), "UNNAMED_2");
        assert_eq!(enum_value("E", "_"), "UNNAMED_1");
        for name in [snake("_"), camel("__"), shouty("___")] {
            syn::parse_str::<syn::Ident>(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn long_names_are_cut_with_a_hash_in_their_case() {
        assert_eq!(fit_file_name(escape("Short")), "Short");
        let camel = "A".repeat(300);
        let fitted = fit_file_name(escape(&camel));
        assert!(fitted.len() <= MAX_ITEM_NAME && fitted.starts_with(&camel[..160]));
        assert!(!fit_file_name(escape(&"a_".repeat(200))).contains("__"));
        assert!(fitted[160..].bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(fitted, fit_file_name(escape(&format!("{camel}B"))));
        let shouty = fit_file_name(escape(&format!("{}_DESCRIPTOR", "A".repeat(300))));
        assert_eq!(&shouty[160..161], "_");
    }

    #[test]
    fn enum_prefixes_are_stripped_only_when_safe() {
        assert_eq!(enum_value("Color", "COLOR_RED"), "RED");
        assert_eq!(enum_value("Color", "RED"), "RED");
        assert_eq!(enum_value("Color", "COLOR_1"), "COLOR_1");
        assert_eq!(enum_value("Color", "COLOR"), "COLOR");
        assert_eq!(enum_value("PhoneType", "PHONE_TYPE_MOBILE"), "MOBILE");
        assert_eq!(enum_value("Kw", "KW_SELF"), "SELF");
    }
}
