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
    fn enum_prefixes_are_stripped_only_when_safe() {
        assert_eq!(enum_value("Color", "COLOR_RED"), "RED");
        assert_eq!(enum_value("Color", "RED"), "RED");
        assert_eq!(enum_value("Color", "COLOR_1"), "COLOR_1");
        assert_eq!(enum_value("Color", "COLOR"), "COLOR");
        assert_eq!(enum_value("PhoneType", "PHONE_TYPE_MOBILE"), "MOBILE");
        assert_eq!(enum_value("Kw", "KW_SELF"), "SELF");
    }
}
