//! The JSON mapping of a message (the `json` option): `rust_rpc::json::JsonFields`, which
//! names each field's JSON and `.proto` names and its codec marker, and the serde impls that
//! hand over to it. Everything else (value forms, options, errors) is in the runtime.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;

use super::message::{codec as json_codec, map_codecs};
use super::{ident, Scope};
use crate::ir::{Cardinality, Field, FieldKind, Message, RustIdent, TypeRef};

/// The well-known types whose JSON form is not an object of their fields: the runtime
/// implements theirs by hand (`rust_rpc::json`), so generated code must not.
const OWN_FORM: &[&str] = &[
    "google.protobuf.Any",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// The `JsonFields`, `Serialize` and `Deserialize` impls of `msg`, or nothing when the option
/// is off or the type's form is the runtime's.
pub(super) fn json_impls(msg: &Message, scope: &Scope, allow: &TokenStream) -> TokenStream {
    let Some(gate) = scope.json_gate() else {
        return TokenStream::new();
    };
    if OWN_FORM.contains(&msg.full_name.as_str()) {
        return TokenStream::new();
    }
    let name = ident(&msg.rust_name);
    let module = ident(&msg.module_name);
    let mut writes = Vec::new();
    let mut arms = Vec::new();
    let all_fields = || {
        msg.fields
            .iter()
            .chain(msg.oneofs.iter().flat_map(|o| &o.fields))
    };
    let json_names: HashSet<&str> = all_fields().map(|f| f.json_name.as_str()).collect();
    let mut taken: HashSet<&str> = HashSet::new();
    for field in &msg.fields {
        let member = ident(&field.rust_name);
        let (json, proto, n) = names(field);
        let Some(keys) = keys(field, &json_names, &mut taken) else {
            continue;
        };
        let codec = || json_codec(field);
        let (write, read) = match (&field.kind, field.cardinality) {
            (FieldKind::Map { .. }, _) => {
                let (k, v) = map_codecs(field);
                (
                    quote!(w.map::<#k, #v, _>(#json, #proto, &self.#member)?;),
                    quote!(r.map::<#k, #v, _>(#n, &mut self.#member)),
                )
            }
            (_, Cardinality::Repeated { .. }) => {
                let c = codec();
                (
                    quote!(w.repeated::<#c>(#json, #proto, &self.#member)?;),
                    quote!(r.repeated::<#c>(#n, &mut self.#member)),
                )
            }
            (_, Cardinality::Optional | Cardinality::Required) => {
                let c = codec();
                let read = if super::message::is_boxed(&field.kind) {
                    quote!(r.boxed::<#c>(#n, &mut self.#member))
                } else {
                    quote!(r.optional::<#c>(#n, &mut self.#member))
                };
                (
                    quote! {
                        if let ::core::option::Option::Some(v) = &self.#member {
                            w.value::<#c>(#json, #proto, v)?;
                        }
                    },
                    read,
                )
            }
            (_, Cardinality::Implicit | Cardinality::OneofMember) => {
                let c = codec();
                (
                    quote!(w.implicit::<#c>(#json, #proto, &self.#member)?;),
                    quote!(r.implicit::<#c>(#n, &mut self.#member)),
                )
            }
        };
        writes.push((field.number, write));
        arms.push(quote!(#keys => #read,));
    }
    for oneof in &msg.oneofs {
        let member = ident(&oneof.rust_field);
        let enum_name = ident(&oneof.rust_enum);
        for field in &oneof.fields {
            let variant = ident(&field.rust_name);
            let (json, proto, n) = names(field);
            let c = json_codec(&lifted(field, &msg.module_name));
            writes.push((
                field.number,
                quote! {
                    if let ::core::option::Option::Some(#module::#enum_name::#variant(v)) =
                        &self.#member
                    {
                        w.value::<#c>(#json, #proto, v)?;
                    }
                },
            ));
            let make = if super::message::is_boxed(&field.kind) {
                quote!(|v| #module::#enum_name::#variant(::std::boxed::Box::new(v)))
            } else {
                quote!(#module::#enum_name::#variant)
            };
            if let Some(keys) = keys(field, &json_names, &mut taken) {
                arms.push(quote!(#keys => r.oneof::<#c, _>(#n, &mut self.#member, #make),));
            }
        }
    }
    // In field-number order, oneof members at their numbers, as protobuf's printers write.
    writes.sort_by_key(|(number, _)| *number);
    let writes: Vec<TokenStream> = writes.into_iter().map(|(_, w)| w).collect();
    let uses = if writes.is_empty() {
        TokenStream::new()
    } else {
        quote!(
            use ::rust_rpc::encoding as _enc;
        )
    };
    let (w, r, key) = if writes.is_empty() {
        (quote!(_w), quote!(_r), quote!(_key))
    } else {
        (quote!(w), quote!(r), quote!(key))
    };
    let read_body = if arms.is_empty() {
        quote!(::core::result::Result::Ok(false))
    } else {
        quote! {
            match key {
                #(#arms)*
                _ => ::core::result::Result::Ok(false),
            }
        }
    };
    let serde = quote!(::rust_rpc::json::serde);
    let extensions = if msg.extendable {
        quote! {
            fn json_extensions(&self) -> ::core::option::Option<&::rust_rpc::UnknownFields> {
                ::core::option::Option::Some(&self.unknown_fields)
            }

            fn json_extensions_mut(
                &mut self,
            ) -> ::core::option::Option<&mut ::rust_rpc::UnknownFields> {
                ::core::option::Option::Some(&mut self.unknown_fields)
            }
        }
    } else {
        TokenStream::new()
    };
    // Type parameters start with `__`, which no generated type name does (`ident::camel`), so
    // a message `S` or `A` named in the bodies is never shadowed.
    quote! {
        #gate
        #allow
        impl ::rust_rpc::json::JsonFields for #name {
            #extensions

            fn write_fields<__S: #serde::ser::SerializeMap>(
                &self,
                #w: &mut ::rust_rpc::json::FieldWriter<'_, __S>,
            ) -> ::core::result::Result<(), __S::Error> {
                #uses
                #(#writes)*
                ::core::result::Result::Ok(())
            }

            fn read_field<'de, __A: #serde::de::MapAccess<'de>>(
                &mut self,
                #key: &str,
                #r: &mut ::rust_rpc::json::FieldReader<'_, __A>,
            ) -> ::core::result::Result<bool, __A::Error> {
                #uses
                #read_body
            }
        }

        #gate
        #allow
        impl #serde::Serialize for #name {
            fn serialize<__S: #serde::Serializer>(
                &self,
                s: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                ::rust_rpc::json::JsonMessage::write_json(self, s)
            }
        }

        #gate
        #allow
        impl<'de> #serde::Deserialize<'de> for #name {
            fn deserialize<__D: #serde::Deserializer<'de>>(
                d: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                ::rust_rpc::json::deserialize(d)
            }
        }
    }
}

/// A oneof member with its type's path as seen from the message instead of from the module
/// its oneof's enum is in: `super::X` is `X`, a path into the module gains its name, and
/// absolute paths stay.
pub(super) fn lifted(field: &Field, module: &RustIdent) -> Field {
    let lift = |ty: &mut TypeRef| {
        let path = &mut ty.rust_path;
        match path.segments.first() {
            Some(first) if !path.global && *first == "super" => {
                path.segments.remove(0);
            }
            Some(first) if path.global || *first == "crate" => {}
            _ => path.segments.insert(0, module.clone()),
        }
    };
    let mut field = field.clone();
    match &mut field.kind {
        FieldKind::Enum(ty) | FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } => {
            lift(ty)
        }
        FieldKind::Scalar(_) | FieldKind::Map { .. } => {}
    }
    field
}

/// The field's JSON name, `.proto` name and number, as literals.
fn names(field: &Field) -> (String, String, proc_macro2::Literal) {
    (
        field.json_name.clone(),
        field.proto_name.clone(),
        proc_macro2::Literal::u32_unsuffixed(field.number),
    )
}

/// The keys a field is read under: its JSON name and its `.proto` name, each unless an
/// earlier field has it, and the `.proto` name unless it is another field's JSON name (JSON
/// names win, as in protobuf's parsers); `None` when no key is left.
fn keys<'a>(
    field: &'a Field,
    json_names: &HashSet<&str>,
    taken: &mut HashSet<&'a str>,
) -> Option<TokenStream> {
    let json = field.json_name.as_str();
    let proto = field.proto_name.as_str();
    let mut keys = Vec::new();
    if taken.insert(json) {
        keys.push(json);
    }
    if proto != json && !json_names.contains(proto) && taken.insert(proto) {
        keys.push(proto);
    }
    (!keys.is_empty()).then(|| quote!(#(#keys)|*))
}
