//! Options by name: the one place that knows every option, so the protoc plugin's parameters,
//! the CLI's flags and the build-script builder map onto [`Config`] the same way.

use crate::{Config, Error, MapType};

/// The options, as `(name, what its value is)`, for help texts and error messages.
pub const OPTIONS: &[(&str, &str)] = &[
    ("map_type", "hash or btree (bare `btree_map` means btree)"),
    ("unknown_fields", "keep or discard (bare means keep)"),
    (
        "include_file",
        "file name of the module tree (default _include.rs)",
    ),
    ("extern_path", "PROTO_PATH=RUST_PATH, repeatable"),
    ("type_attribute", "PROTO_PATH=ATTRIBUTE, repeatable"),
    ("field_attribute", "PROTO_PATH=ATTRIBUTE, repeatable"),
    (
        "client",
        "true or false: generate service stubs (bare means true)",
    ),
    (
        "server",
        "true or false: generate service server adapters (bare means true)",
    ),
    (
        "services",
        "true or false: generate services at all (bare means true)",
    ),
    (
        "json",
        "true or false: generate protobuf's JSON mapping (serde) for messages (bare means true)",
    ),
    (
        "json_feature",
        "FEATURE: put the JSON impls behind #[cfg(feature = \"FEATURE\")] (implies json)",
    ),
    (
        "text",
        "true or false: generate protobuf's text format for messages (bare means true)",
    ),
    (
        "text_feature",
        "FEATURE: put the text-format impls behind #[cfg(feature = \"FEATURE\")] (implies text)",
    ),
    (
        "bytes",
        "PROTO_PATH: bytes fields under it become bytes::Bytes, repeatable ('.' for all)",
    ),
];

fn flag(name: &str, value: Option<&str>) -> Result<bool, Error> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Error::option(format!(
            "option '{name}' takes true or false, not '{other}'"
        ))),
    }
}

/// A cargo feature name, for the options that gate generated impls behind one.
fn feature_name(name: &str, value: Option<&str>) -> Result<String, Error> {
    let feature = required(name, value)?;
    if !feature
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
    {
        return Err(Error::option(format!(
            "option '{name}' takes a cargo feature name, not '{feature}'"
        )));
    }
    Ok(feature.to_owned())
}

fn required<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, Error> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::option(format!("option '{name}' needs a value")))
}

/// Splits `PATH=VALUE`; the path must be a proto path starting with `.`.
fn path_and_value(name: &str, value: Option<&str>) -> Result<(String, String), Error> {
    let value = required(name, value)?;
    let (path, rest) = value.split_once('=').ok_or_else(|| {
        Error::option(format!(
            "option '{name}' takes PROTO_PATH=VALUE, got '{value}'"
        ))
    })?;
    if !path.starts_with('.') || rest.is_empty() {
        return Err(Error::option(format!(
            "option '{name}': '{value}' needs a proto path starting with '.' and a non-empty value"
        )));
    }
    Ok((path.to_owned(), rest.to_owned()))
}

impl Config {
    /// Sets one option by name, as the plugin's `--rust-rpc_opt` and the CLI's flags spell
    /// them; `value` is `None` for a bare `name`.
    pub fn set_option(&mut self, name: &str, value: Option<&str>) -> Result<(), Error> {
        match name {
            "map_type" => {
                self.map_type = match required(name, value)? {
                    "hash" => MapType::Hash,
                    "btree" => MapType::BTree,
                    other => {
                        return Err(Error::option(format!(
                            "option 'map_type' takes hash or btree, not '{other}'"
                        )))
                    }
                }
            }
            "btree_map" => {
                self.map_type = if flag(name, value)? {
                    MapType::BTree
                } else {
                    MapType::Hash
                }
            }
            "unknown_fields" => {
                self.unknown_fields = match value {
                    None | Some("keep") => true,
                    Some("discard") => false,
                    Some(other) => {
                        return Err(Error::option(format!(
                            "option 'unknown_fields' takes keep or discard, not '{other}'"
                        )))
                    }
                }
            }
            "include_file" => {
                let file = required(name, value)?;
                if file.contains(['/', '\\']) {
                    return Err(Error::option(format!(
                        "option 'include_file' takes a file name, not a path: '{file}'"
                    )));
                }
                self.include_file = file.to_owned();
            }
            "extern_path" => {
                let (path, rust) = path_and_value(name, value)?;
                check_rust_path(&rust)?;
                self.extern_paths.push((path, rust));
            }
            "type_attribute" => {
                let (path, attribute) = path_and_value(name, value)?;
                check_attribute(&attribute)?;
                self.type_attributes.push((path, attribute));
            }
            "field_attribute" => {
                let (path, attribute) = path_and_value(name, value)?;
                check_attribute(&attribute)?;
                self.field_attributes.push((path, attribute));
            }
            "client" => self.build_client = flag(name, value)?,
            "server" => self.build_server = flag(name, value)?,
            "services" => self.build_services = flag(name, value)?,
            "json" => self.json = flag(name, value)?,
            "json_feature" => {
                self.json = true;
                self.json_feature = Some(feature_name(name, value)?);
            }
            "text" => self.text = flag(name, value)?,
            "text_feature" => {
                self.text = true;
                self.text_feature = Some(feature_name(name, value)?);
            }
            "bytes" => {
                let path = required(name, value)?;
                if !path.starts_with('.') {
                    return Err(Error::option(format!(
                        "option 'bytes' takes a proto path starting with '.', not '{path}'"
                    )));
                }
                self.bytes_paths.push(path.to_owned());
            }
            _ => {
                let known: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
                return Err(Error::option(format!(
                    "unknown option '{name}' (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A configuration from a protoc plugin parameter: `k=v` and bare `k` items separated by
    /// commas. Commas inside brackets or parentheses belong to the value, so attributes such
    /// as `type_attribute=.a.B=#[derive(Eq, Hash)]` need no escaping.
    pub fn from_parameter(parameter: &str) -> Result<Config, Error> {
        let mut config = Config::default();
        for item in split_parameter(parameter) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match item.split_once('=') {
                Some((name, value)) => config.set_option(name.trim(), Some(value.trim()))?,
                None => config.set_option(item, None)?,
            }
        }
        Ok(config)
    }
}

pub(crate) fn check_attribute(attribute: &str) -> Result<(), Error> {
    let tokens: proc_macro2::TokenStream = attribute
        .parse()
        .map_err(|e| Error::option(format!("attribute '{attribute}' is not valid Rust: {e}")))?;
    syn::parse::Parser::parse2(syn::Attribute::parse_outer, tokens)
        .map(drop)
        .map_err(|e| {
            Error::option(format!(
                "'{attribute}' is not an attribute such as #[derive(Hash)]: {e}"
            ))
        })
}

/// Checks the Rust side of an `extern_path`: a path of plain identifiers, such as
/// `::rust_rpc::wkt` or `crate::generated::Foo`, which generated code can extend with type names.
pub(crate) fn check_rust_path(path: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Error::option(format!(
            "option 'extern_path': '{path}' is not a Rust path such as ::my_crate::types ({why})"
        ))
    };
    let parsed = syn::parse_str::<syn::Path>(path).map_err(|e| bad(&e.to_string()))?;
    if parsed
        .segments
        .iter()
        .any(|s| !matches!(s.arguments, syn::PathArguments::None))
    {
        return Err(bad("generic arguments are not allowed"));
    }
    Ok(())
}

/// Splits on commas outside `[]`, `()` and `{}`.
fn split_parameter(parameter: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in parameter.char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            ',' if depth <= 0 => {
                items.push(&parameter[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&parameter[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Config {
        Config::from_parameter(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn fails(p: &str) -> String {
        match Config::from_parameter(p) {
            Ok(_) => panic!("{p}: expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_parameter_is_the_default() {
        let c = parse("");
        assert_eq!(c.map_type, MapType::Hash);
        assert!(c.unknown_fields && c.build_client && c.build_server);
    }

    #[test]
    fn map_type_in_both_forms() {
        assert_eq!(parse("map_type=btree").map_type, MapType::BTree);
        assert_eq!(parse("map_type=hash").map_type, MapType::Hash);
        assert_eq!(parse("btree_map").map_type, MapType::BTree);
        assert_eq!(parse("btree_map=false").map_type, MapType::Hash);
        assert!(fails("map_type").contains("option 'map_type' needs a value"));
        assert!(fails("map_type=vec").contains("hash or btree, not 'vec'"));
    }

    #[test]
    fn unknown_fields_in_both_forms() {
        assert!(parse("unknown_fields").unknown_fields);
        assert!(parse("unknown_fields=keep").unknown_fields);
        assert!(!parse("unknown_fields=discard").unknown_fields);
        assert!(fails("unknown_fields=drop").contains("keep or discard"));
    }

    #[test]
    fn include_file_needs_a_plain_name() {
        assert_eq!(parse("include_file=mod.rs").include_file, "mod.rs");
        assert!(fails("include_file").contains("needs a value"));
        assert!(fails("include_file=a/b.rs").contains("a file name, not a path"));
    }

    #[test]
    fn extern_paths_repeat() {
        let c = parse("extern_path=.a=::x,extern_path=.b.C=::y::C");
        assert!(c.extern_paths.contains(&(".a".into(), "::x".into())));
        assert!(c.extern_paths.contains(&(".b.C".into(), "::y::C".into())));
        assert!(fails("extern_path").contains("needs a value"));
        assert!(fails("extern_path=a=::x").contains("starting with '.'"));
        assert!(fails("extern_path=.a").contains("PROTO_PATH=VALUE"));
        // Rust paths that generated code could not name its types through are refused here,
        // not met as a panic while emitting.
        for bad in ["::a b", "::1x", "::a-b", "::x<T>", "::", "a::"] {
            let err = fails(&format!("extern_path=.a={bad}"));
            assert!(err.contains("is not a Rust path"), "{bad}: {err}");
        }
        let c = parse("extern_path=.a=crate::gen::r#type");
        assert_eq!(
            c.extern_paths.last().map(|p| p.1.as_str()),
            Some("crate::gen::r#type")
        );
    }

    #[test]
    fn attributes_keep_their_commas() {
        let c = parse("type_attribute=.pkg.M=#[derive(Eq, Hash)],field_attribute=.pkg.M.f=#[allow(dead_code)],server=false");
        assert_eq!(
            c.type_attributes,
            [(".pkg.M".to_owned(), "#[derive(Eq, Hash)]".to_owned())]
        );
        assert_eq!(
            c.field_attributes,
            [(".pkg.M.f".to_owned(), "#[allow(dead_code)]".to_owned())]
        );
        assert!(!c.build_server);
        assert!(fails("type_attribute=.a=derive(Hash)").contains("not an attribute"));
        assert!(fails("type_attribute").contains("needs a value"));
        assert!(fails("field_attribute=.a.b=#[").contains("not valid Rust"));
    }

    #[test]
    fn client_and_server_in_both_forms() {
        assert!(parse("client").build_client);
        assert!(!parse("client=false").build_client);
        assert!(parse("server=true").build_server);
        assert!(!parse("server=false").build_server);
        assert!(!parse("services=false").build_services);
        assert_eq!(parse("bytes=.,bytes=.a.B").bytes_paths, [".", ".a.B"]);
        assert!(fails("bytes=a.B").contains("starting with '.'"));
        assert!(fails("client=maybe").contains("true or false"));
    }

    #[test]
    fn unknown_options_are_named() {
        let message = fails("map_type=btree,frobnicate=1");
        assert!(message.contains("unknown option 'frobnicate'"), "{message}");
    }
}
