//! The text format of a message (the `text` option): `rust_rpc::text::TextMessage`, which
//! names each field's text name, number and codec marker. The value forms, the lexer and the
//! printer are in the runtime.

use proc_macro2::TokenStream;
use quote::quote;

use super::json::lifted;
use super::message::{codec, is_boxed, map_codecs};
use super::{ident, Scope};
use crate::ir::{Cardinality, Field, FieldKind, Message};

/// The `TextMessage` impl of `msg`, or nothing when the option is off.
pub(super) fn text_impl(msg: &Message, scope: &Scope, allow: &TokenStream) -> TokenStream {
    let Some(gate) = scope.text_gate() else {
        return TokenStream::new();
    };
    let name = ident(&msg.rust_name);
    let module = ident(&msg.module_name);
    let mut prints = Vec::new();
    let mut arms = Vec::new();
    for field in &msg.fields {
        let member = ident(&field.rust_name);
        let (printed, keys) = names(field);
        let n = proc_macro2::Literal::u32_unsuffixed(field.number);
        let (print, parse) = match (&field.kind, field.cardinality) {
            (FieldKind::Map { .. }, _) => {
                let (k, v) = map_codecs(field);
                (
                    quote!(p.map::<#k, #v, _>(#printed, &self.#member);),
                    quote!(p.map::<#k, #v, _>(&mut self.#member)),
                )
            }
            (_, Cardinality::Repeated { .. }) => {
                let c = codec(field);
                (
                    quote!(p.repeated::<#c>(#printed, &self.#member);),
                    quote!(p.repeated::<#c>(&mut self.#member)),
                )
            }
            (_, Cardinality::Optional | Cardinality::Required) => {
                let c = codec(field);
                let parse = if is_boxed(&field.kind) {
                    quote!(p.boxed::<#c>(#n, &mut self.#member))
                } else {
                    quote!(p.optional::<#c>(#n, &mut self.#member))
                };
                (
                    quote! {
                        if let ::core::option::Option::Some(v) = &self.#member {
                            p.value::<#c>(#printed, v);
                        }
                    },
                    parse,
                )
            }
            (_, Cardinality::Implicit | Cardinality::OneofMember) => {
                let c = codec(field);
                (
                    quote!(p.implicit::<#c>(#printed, &self.#member);),
                    quote!(p.implicit::<#c>(#n, &mut self.#member)),
                )
            }
        };
        prints.push((field.number, print));
        arms.push(quote!(#keys => #parse,));
    }
    for oneof in &msg.oneofs {
        let member = ident(&oneof.rust_field);
        let enum_name = ident(&oneof.rust_enum);
        for field in &oneof.fields {
            let variant = ident(&field.rust_name);
            let (printed, keys) = names(field);
            let n = proc_macro2::Literal::u32_unsuffixed(field.number);
            let c = codec(&lifted(field, &msg.module_name));
            prints.push((
                field.number,
                quote! {
                    if let ::core::option::Option::Some(#module::#enum_name::#variant(v)) =
                        &self.#member
                    {
                        p.value::<#c>(#printed, v);
                    }
                },
            ));
            let make = if is_boxed(&field.kind) {
                quote!(|v| #module::#enum_name::#variant(::std::boxed::Box::new(v)))
            } else {
                quote!(#module::#enum_name::#variant)
            };
            arms.push(quote!(#keys => p.oneof::<#c, _>(#n, &mut self.#member, #make),));
        }
    }
    // In field-number order, oneof members at their numbers, as protoc prints.
    prints.sort_by_key(|(number, _)| *number);
    let prints: Vec<TokenStream> = prints.into_iter().map(|(_, p)| p).collect();
    let uses = if prints.is_empty() {
        TokenStream::new()
    } else {
        quote!(
            use ::rust_rpc::encoding as _enc;
        )
    };
    let (p_print, p_parse, name_param) = if prints.is_empty() {
        (quote!(_p), quote!(_p), quote!(_name))
    } else {
        (quote!(p), quote!(p), quote!(name))
    };
    let parse_body = if arms.is_empty() {
        quote!(::core::result::Result::Ok(false))
    } else {
        quote! {
            match name {
                #(#arms)*
                _ => ::core::result::Result::Ok(false),
            }
        }
    };
    let unknown = if msg.keep_unknown {
        quote! {
            fn text_unknown_fields(&self) -> ::core::option::Option<&::rust_rpc::UnknownFields> {
                ::core::option::Option::Some(&self.unknown_fields)
            }
        }
    } else {
        TokenStream::new()
    };
    quote! {
        #gate
        #allow
        impl ::rust_rpc::text::TextMessage for #name {
            fn print_fields(&self, #p_print: &mut ::rust_rpc::text::Printer<'_>) {
                #uses
                #(#prints)*
            }

            fn parse_field(
                &mut self,
                #name_param: &str,
                #p_parse: &mut ::rust_rpc::text::FieldParser<'_, '_>,
            ) -> ::core::result::Result<bool, ::rust_rpc::text::TextError> {
                #uses
                #parse_body
            }

            #unknown
        }
    }
}

/// The name a field is printed under, and the names it is read under: its `.proto` name; for
/// a group (or an editions field encoded as one whose name is its type's, lower-cased), the
/// type's name, as protobuf prints it, and the field's name too.
fn names(field: &Field) -> (String, TokenStream) {
    let proto = field.proto_name.clone();
    if let FieldKind::Group { ty, .. } = &field.kind {
        let type_name = ty.full_name.rsplit('.').next().unwrap_or(&ty.full_name);
        if type_name.to_ascii_lowercase() == proto && type_name != proto {
            return (type_name.to_owned(), quote!(#type_name | #proto));
        }
    }
    (proto.clone(), quote!(#proto))
}
