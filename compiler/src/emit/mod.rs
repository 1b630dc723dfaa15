//! IR to tokens. Pure and infallible: one small function per construct, no lookups, no I/O.

mod enumeration;
mod json;
mod message;
mod service;
mod text;

use proc_macro2::{Ident, TokenStream};
use quote::{quote, ToTokens};

use crate::docs;
use crate::ir::{Comments, Package, RustIdent, RustPath};
use crate::MapType;

/// Switches that change the shape of emitted code.
#[derive(Clone, Copy)]
pub(crate) struct EmitOptions<'a> {
    pub map_type: MapType,
    pub build_client: bool,
    pub build_server: bool,
    pub build_services: bool,
    /// The JSON mapping: `None` for none, `Some(None)` for always, `Some(Some(feature))`
    /// behind `#[cfg(feature = "...")]`.
    pub json: Option<Option<&'a str>>,
    /// The text format, likewise.
    pub text: Option<Option<&'a str>>,
}

/// Everything that goes into one package's `.rs` file.
pub(crate) fn package(pkg: &Package, options: EmitOptions<'_>) -> TokenStream {
    let scope = Scope {
        module: pkg.module_path.last().cloned(),
        options,
    };
    let enums = pkg.enums.iter().map(enumeration::enumeration);
    let messages = pkg.messages.iter().map(|m| message::message(m, &scope));
    let services = pkg
        .services
        .iter()
        .filter(|_| options.build_services)
        .map(|s| service::service(s, options));
    let extensions = pkg.extensions.iter().map(message::extension);
    quote! {
        #(#enums)*
        #(#messages)*
        #(#services)*
        #(#extensions)*
    }
}

/// What emit functions need to know about where their output lands.
pub(crate) struct Scope<'a> {
    /// Name of the module the items are emitted into (none at the root), to spot `foo::foo`
    /// nesting.
    module: Option<RustIdent>,
    options: EmitOptions<'a>,
}

impl Scope<'_> {
    /// The attribute that gates JSON impls (empty when they are always on), or `None` when
    /// the JSON mapping is off.
    fn json_gate(&self) -> Option<TokenStream> {
        gate(self.options.json)
    }

    /// Likewise for the text format.
    fn text_gate(&self) -> Option<TokenStream> {
        gate(self.options.text)
    }
}

fn gate(option: Option<Option<&str>>) -> Option<TokenStream> {
    match option? {
        None => Some(TokenStream::new()),
        Some(feature) => Some(quote!(#[cfg(feature = #feature)])),
    }
}

/// The token for a name `lower` decided.
pub(crate) fn ident(name: &RustIdent) -> Ident {
    name.to_ident()
}

/// The tokens for a path `lower` decided (`super::a::B`, `::rust_rpc::wkt::Any`).
pub(crate) fn path(path: &RustPath) -> TokenStream {
    path.to_token_stream()
}

/// The doc line of an item that did not get the name it wanted (`wanted`), or none when it
/// has none or kept its `.proto` name as written (`encode_`, `STRIPPED_B`).
pub(crate) fn rename_note(
    proto_name: &str,
    rust_name: &RustIdent,
    wanted: Option<&RustIdent>,
) -> Option<String> {
    let rust_name = rust_name.unraw();
    let wanted = wanted?.unraw();
    (rust_name != proto_name).then(|| {
        format!("`{proto_name}` in the `.proto`; named `{rust_name}` because `{wanted}` is taken.")
    })
}

/// `#[doc = "..."]` attributes for comments plus any extra paragraphs.
pub(crate) fn doc_attrs(comments: &Comments, extra: &[String]) -> TokenStream {
    let mut lines = docs::lines(comments);
    for paragraph in extra {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.push(paragraph.clone());
    }
    let lines = lines.iter().map(|l| format!(" {l}"));
    quote! { #(#[doc = #lines])* }
}

/// `#[allow(deprecated)]` for generated items that name deprecated things themselves.
pub(crate) fn allow_deprecated(yes: bool) -> TokenStream {
    if yes {
        quote!(#[allow(deprecated)])
    } else {
        TokenStream::new()
    }
}

/// User-configured attributes, checked when they were configured.
pub(crate) fn user_attrs(attributes: &[String]) -> TokenStream {
    attributes
        .iter()
        .map(|a| a.parse::<TokenStream>().unwrap_or_default())
        .collect()
}

/// Methods of std's traits that clippy's `should_implement_trait` expects a method of the same
/// name to implement; from clippy's own list.
const STD_TRAIT_METHODS: &[&str] = &[
    "add",
    "as_mut",
    "as_ref",
    "bitand",
    "bitor",
    "bitxor",
    "borrow",
    "borrow_mut",
    "clone",
    "cmp",
    "default",
    "deref",
    "deref_mut",
    "div",
    "drop",
    "eq",
    "from_iter",
    "from_str",
    "hash",
    "index",
    "index_mut",
    "into_iter",
    "mul",
    "neg",
    "next",
    "not",
    "rem",
    "shl",
    "shr",
    "sub",
];

/// `#[allow]`s for the lints a generated method (a getter, a client's call) may trip by the
/// name the user gave in the `.proto`, where renaming would surprise more than it helps:
/// `should_implement_trait` (a std trait method's name), `wrong_self_convention` (`into_*`,
/// `from_*`, which clippy expects to take `self` or no `self`), `new_ret_no_self` (`new`),
/// `len_without_is_empty` (`len`).
/// Names that would hide a trait's method are renamed instead (in `lower`).
pub(crate) fn method_name_allows(name: &RustIdent) -> TokenStream {
    let name = name.unraw();
    let mut lints = Vec::new();
    if STD_TRAIT_METHODS.contains(&name) {
        lints.push(quote!(clippy::should_implement_trait));
    }
    if name.starts_with("into_") || name.starts_with("from_") {
        lints.push(quote!(clippy::wrong_self_convention));
    }
    if name == "new" {
        lints.push(quote!(clippy::new_ret_no_self));
    }
    if name == "len" {
        lints.push(quote!(clippy::len_without_is_empty));
    }
    if lints.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[allow(#(#lints),*)])
    }
}

/// The docs line of a type that did not get its own name.
pub(crate) fn renamed_type_line(rust_name: &RustIdent, wanted: &RustIdent) -> String {
    let rust_name = rust_name.unraw();
    let wanted = wanted.unraw();
    if wanted.len() > crate::ident::MAX_ITEM_NAME {
        format!(
            "Named `{rust_name}` because its name ({} bytes) is longer than a file name may be \
             (rustdoc writes a page per item).",
            wanted.len()
        )
    } else {
        format!("Named `{rust_name}` because `{wanted}` is taken in its module.")
    }
}

pub(crate) fn deprecated_attr(deprecated: bool) -> TokenStream {
    if deprecated {
        quote!(#[deprecated])
    } else {
        TokenStream::new()
    }
}

/// The include file: a module tree over the package files, so that one `include!` brings in
/// everything generated.
pub(crate) fn include_file(packages: &[Package]) -> TokenStream {
    /// The packages under the module at `depth`.
    fn tree(entries: &[&Package], depth: usize) -> TokenStream {
        let mut out = TokenStream::new();
        for p in entries.iter().filter(|p| p.module_path.len() == depth) {
            let file = &p.file_name;
            out.extend(quote!(include!(#file);));
        }
        let mut children: Vec<&RustIdent> = entries
            .iter()
            .filter(|p| p.module_path.len() > depth)
            .map(|p| &p.module_path[depth])
            .collect();
        children.dedup();
        for child in children {
            let inner: Vec<&Package> = entries
                .iter()
                .filter(|p| p.module_path.len() > depth && p.module_path[depth] == *child)
                .copied()
                .collect();
            let name = ident(child);
            let body = tree(&inner, depth + 1);
            // `package foo.foo` nests a module in one of its own name, as the schema says.
            let inception = (depth > 0
                && entries.iter().any(|p| p.module_path[depth - 1] == *child))
            .then(|| quote!(#[allow(clippy::module_inception)]));
            // A module that did not get its package's name says so.
            let note = inner.first().and_then(|p| {
                let segments: Vec<&str> = p.name.split('.').collect();
                let wanted = p.module_wanted.get(depth)?;
                rename_note(&segments[..=depth].join("."), child, Some(wanted))
                    .filter(|_| wanted != child)
            });
            let docs = note.map(|n| {
                let n = format!(" {n}");
                quote!(#[doc = #n])
            });
            out.extend(quote! {
                #docs
                #inception
                pub mod #name {
                    #body
                }
            });
        }
        out
    }
    let mut sorted: Vec<&Package> = packages.iter().collect();
    sorted.sort_by(|a, b| (&a.module_path, &a.file_name).cmp(&(&b.module_path, &b.file_name)));
    tree(&sorted, 0)
}
