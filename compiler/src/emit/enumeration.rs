use proc_macro2::TokenStream;
use quote::quote;

use super::{allow_deprecated, deprecated_attr, doc_attrs, ident, rename_note, user_attrs};
use crate::ir::{Enum, EnumValue};

/// An open enum: a newtype over `i32` with one associated constant per declared value.
pub(crate) fn enumeration(e: &Enum) -> TokenStream {
    let name = ident(&e.rust_name);
    let full_name = &e.full_name;
    let renamed: Vec<String> = e
        .renamed_from
        .iter()
        .map(|wanted| super::renamed_type_line(&e.rust_name, wanted))
        .collect();
    let docs = doc_attrs(&e.comments, &renamed);
    let deprecated = deprecated_attr(e.deprecated);
    let allow = allow_deprecated(e.touches_deprecated());
    let allow_own = allow_deprecated(e.deprecated);
    let user_attributes = user_attrs(&e.attributes);
    let consts = e.values.iter().filter(|v| !v.shares_const).map(|v| {
        let const_name = ident(&v.rust_name);
        let number = proc_macro2::Literal::i32_unsuffixed(v.number);
        let mut extra = Vec::new();
        if let Some(original) = &v.alias_of {
            extra.push(format!("Alias of [`Self::{original}`]."));
        }
        extra.extend(rename_note(
            &v.proto_name,
            &v.rust_name,
            v.renamed_from.as_ref(),
        ));
        // Aliases whose names fold onto this constant's have none of their own: say so here.
        let sharing: Vec<String> = e
            .values
            .iter()
            .filter(|a| a.shares_const && a.rust_name == v.rust_name)
            .map(|a| format!("`{}`", a.proto_name))
            .collect();
        if !sharing.is_empty() {
            extra.push(format!(
                "Also the value of {} in the `.proto` (aliases without constants of their own: \
                 their names give this one).",
                sharing.join(", ")
            ));
        }
        let docs = doc_attrs(&v.comments, &extra);
        let deprecated = deprecated_attr(v.deprecated);
        quote! {
            #docs
            #deprecated
            pub const #const_name: #name = #name(#number);
        }
    });
    let canonical: Vec<_> = e.values.iter().filter(|v| v.alias_of.is_none()).collect();
    // `(name, number)`, an entry of the `Enumeration` impl's tables.
    let entry = |v: &&EnumValue| {
        let number = proc_macro2::Literal::i32_unsuffixed(v.number);
        let proto_name = &v.proto_name;
        quote!((#proto_name, #number))
    };
    let mut by_number = canonical.clone();
    by_number.sort_by_key(|v| v.number);
    let name_table = by_number.iter().map(entry);
    let aliases: Vec<_> = e
        .values
        .iter()
        .filter(|v| v.alias_of.is_some())
        .map(|v| entry(&v))
        .collect();
    let alias_table = (!aliases.is_empty())
        .then(|| quote!(const ALIASES: &'static [(&'static str, i32)] = &[#(#aliases),*];));
    let value_list = canonical.iter().map(|v| {
        let const_name = ident(&v.rust_name);
        quote!(#name::#const_name)
    });
    let first = e
        .values
        .first()
        .map(|v| {
            let c = ident(&v.rust_name);
            quote!(#name::#c)
        })
        .unwrap_or_else(|| quote!(#name(0)));

    quote! {
        #docs
        #deprecated
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        #user_attributes
        pub struct #name(pub i32);

        #allow
        impl #name {
            #(#consts)*

            /// Every declared value except aliases, in declaration order.
            pub const VALUES: &'static [#name] = &[#(#value_list),*];

            /// The value's name in the `.proto`, or `None` for an undeclared number.
            pub fn name(self) -> ::core::option::Option<&'static str> {
                <Self as ::rust_rpc::Enumeration>::name(self)
            }

            /// The value with this `.proto` name, aliases included.
            pub fn from_name(name: &str) -> ::core::option::Option<Self> {
                <Self as ::rust_rpc::Enumeration>::from_name(name)
            }
        }

        #allow
        impl ::core::default::Default for #name {
            /// The first declared value, as protobuf specifies.
            fn default() -> Self {
                #first
            }
        }

        #allow_own
        impl ::core::convert::From<i32> for #name {
            fn from(value: i32) -> Self {
                #name(value)
            }
        }

        #allow_own
        impl ::core::convert::From<#name> for i32 {
            fn from(value: #name) -> i32 {
                value.0
            }
        }

        #allow_own
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    ::core::option::Option::Some(name) => f.write_str(name),
                    ::core::option::Option::None => ::core::fmt::Debug::fmt(&self.0, f),
                }
            }
        }

        #allow_own
        impl ::rust_rpc::Enumeration for #name {
            const FULL_NAME: &'static str = #full_name;
            const NAMES: &'static [(&'static str, i32)] = &[#(#name_table),*];
            #alias_table
        }
    }
}
