//! IR to tokens. Pure and infallible: one small function per construct, no lookups, no I/O.

mod enumeration;
mod message;
mod service;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::docs;
use crate::ir::{Comments, Package};
use crate::MapType;

/// Switches that change the shape of emitted code.
#[derive(Clone, Copy)]
pub(crate) struct EmitOptions {
    pub map_type: MapType,
    pub build_client: bool,
    pub build_server: bool,
    pub build_services: bool,
}

/// Everything that goes into one package's `.rs` file.
pub(crate) fn package(pkg: &Package, options: EmitOptions) -> TokenStream {
    let scope = Scope {
        module: pkg.module_path.last().cloned().unwrap_or_default(),
        options,
    };
    let enums = pkg.enums.iter().map(enumeration::enumeration);
    let messages = pkg.messages.iter().map(|m| message::message(m, &scope));
    let services = pkg
        .services
        .iter()
        .filter(|_| options.build_services)
        .map(|s| service::service(s, options));
    quote! {
        #(#enums)*
        #(#messages)*
        #(#services)*
    }
}

/// What emit functions need to know about where their output lands.
pub(crate) struct Scope {
    /// Name of the module the items are emitted into, to spot `foo::foo` nesting.
    module: String,
    options: EmitOptions,
}

/// An identifier from a name that may carry a raw prefix (`r#type`).
pub(crate) fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

/// Tokens for a Rust path written as a string by `lower` (`super::a::B`, `::rust_rpc::wkt::Any`).
///
/// Built segment by segment: `lower` writes only `::`-separated escaped identifiers, and this
/// runs for every type reference, where a full parse would dominate generation time.
pub(crate) fn path(text: &str) -> TokenStream {
    let (absolute, rest) = match text.strip_prefix("::") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let segments = rest.split("::").map(ident);
    if absolute {
        quote!(#(::#segments)*)
    } else {
        quote!(#(#segments)::*)
    }
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

pub(crate) fn deprecated_attr(deprecated: bool) -> TokenStream {
    if deprecated {
        quote!(#[deprecated])
    } else {
        TokenStream::new()
    }
}

/// The include file: a module tree over the package files, so that one `include!` brings in
/// everything generated.
pub(crate) fn include_file(packages: &[(Vec<String>, String)]) -> TokenStream {
    fn tree(entries: &[(Vec<String>, String)], depth: usize) -> TokenStream {
        let mut out = TokenStream::new();
        for (_, file) in entries.iter().filter(|(s, _)| s.len() == depth) {
            out.extend(quote!(include!(#file);));
        }
        let mut children: Vec<&String> = entries
            .iter()
            .filter(|(s, _)| s.len() > depth)
            .map(|(s, _)| &s[depth])
            .collect();
        children.dedup();
        for child in children {
            let inner: Vec<(Vec<String>, String)> = entries
                .iter()
                .filter(|(s, _)| s.len() > depth && s[depth] == *child)
                .cloned()
                .collect();
            let name = ident(child);
            let body = tree(&inner, depth + 1);
            out.extend(quote! {
                pub mod #name {
                    #body
                }
            });
        }
        out
    }
    let mut sorted = packages.to_vec();
    sorted.sort();
    tree(&sorted, 0)
}
