//! Proto names to Rust identifiers: case conversion and keyword escaping, in one place.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

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

/// Makes `name` usable as a Rust identifier, escaping keywords.
pub fn escape(name: &str) -> String {
    if name.is_empty() {
        return "unnamed".to_owned();
    }
    if UNRAWABLE_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else if RAW_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// A field, function or module name: `snake_case`, escaped.
pub fn snake(name: &str) -> String {
    converted(name, name.to_snake_case(), Case::Snake)
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
fn converted(original: &str, converted: String, case: Case) -> String {
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
pub fn camel(name: &str) -> String {
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
pub fn shouty(name: &str) -> String {
    converted(name, name.to_shouty_snake_case(), Case::Shouty)
}

/// The constant name of an enum value, with the enum's own name dropped from its front
/// (`COLOR_RED` in `Color` becomes `RED`) when what remains is still a valid name.
pub fn enum_value(enum_name: &str, value_name: &str) -> String {
    let prefix = enum_name.to_shouty_snake_case();
    let value = value_name.to_shouty_snake_case();
    let stripped = value
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|rest| !rest.is_empty() && !rest.starts_with(|c: char| c.is_ascii_digit()));
    match stripped {
        Some(rest) => escape(rest),
        None => converted(value_name, value, Case::Shouty),
    }
}

/// Longest name of a module-level item kept as it is: rustdoc writes a file per item
/// (`struct.Name.html`, `name/index.html`) and file systems allow 255 bytes per name.
pub const MAX_ITEM_NAME: usize = 200;

/// `name`, or for a name longer than [`MAX_ITEM_NAME`] its first 160 bytes and the decimal
/// FNV-1a hash of the whole, so every item keeps a name of its own and a page in the docs.
/// Digits fit every case convention: `_` joins them only to names that already hold one.
pub fn fit_file_name(name: String) -> String {
    if name.len() <= MAX_ITEM_NAME {
        return name;
    }
    let mut cut = 160;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let join = if name.contains('_') { "_" } else { "" };
    let kept = name[..cut].trim_end_matches('_');
    format!("{kept}{join}{}", fnv1a(name.as_bytes()))
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
            assert_eq!(escaped, format!("r#{kw}"));
            syn::parse_str::<syn::Ident>(&escaped).unwrap_or_else(|e| panic!("{escaped}: {e}"));
        }
    }

    #[test]
    fn unrawable_keywords_get_an_underscore() {
        for kw in UNRAWABLE_KEYWORDS {
            let escaped = escape(kw);
            assert_eq!(escaped, format!("{kw}_"));
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
        assert_eq!(fit_file_name("Short".to_owned()), "Short");
        let camel = "A".repeat(300);
        let fitted = fit_file_name(camel.clone());
        assert!(fitted.len() <= MAX_ITEM_NAME && fitted.starts_with(&camel[..160]));
        assert!(!fit_file_name("a_".repeat(200)).contains("__"));
        assert!(fitted[160..].bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(fitted, fit_file_name(format!("{camel}B")));
        let shouty = fit_file_name(format!("{}_DESCRIPTOR", "A".repeat(300)));
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
