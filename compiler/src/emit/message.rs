use proc_macro2::{Literal, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};

use super::{
    allow_deprecated, deprecated_attr, doc_attrs, enumeration::enumeration, ident, path,
    rename_note, user_attrs, Scope,
};
use crate::ir::{
    Cardinality, DefaultValue, ExtensionDecl, Field, FieldKind, MapValue, Message, Oneof, Scalar,
    TypeRef,
};
use crate::MapType;

fn num(n: u32) -> Literal {
    Literal::u32_unsuffixed(n)
}

fn scalar_type(s: Scalar) -> TokenStream {
    match s {
        Scalar::Double => quote!(f64),
        Scalar::Float => quote!(f32),
        Scalar::Int32 | Scalar::SInt32 | Scalar::SFixed32 => quote!(i32),
        Scalar::Int64 | Scalar::SInt64 | Scalar::SFixed64 => quote!(i64),
        Scalar::UInt32 | Scalar::Fixed32 => quote!(u32),
        Scalar::UInt64 | Scalar::Fixed64 => quote!(u64),
        Scalar::Bool => quote!(bool),
        Scalar::String => quote!(::std::string::String),
        Scalar::Bytes => quote!(::std::vec::Vec<u8>),
        Scalar::SharedBytes => quote!(::rust_rpc::bytes::Bytes),
    }
}

/// The codec of a scalar; `string` without UTF-8 validation is `LaxStr`, which hands a value
/// that is not UTF-8 to the unknown fields.
fn scalar_codec(s: Scalar, validate_utf8: bool) -> TokenStream {
    let name = match s {
        Scalar::String if !validate_utf8 => "LaxStr",
        Scalar::Double => "Double",
        Scalar::Float => "Float",
        Scalar::Int32 => "Int32",
        Scalar::Int64 => "Int64",
        Scalar::UInt32 => "UInt32",
        Scalar::UInt64 => "UInt64",
        Scalar::SInt32 => "SInt32",
        Scalar::SInt64 => "SInt64",
        Scalar::Fixed32 => "Fixed32",
        Scalar::Fixed64 => "Fixed64",
        Scalar::SFixed32 => "SFixed32",
        Scalar::SFixed64 => "SFixed64",
        Scalar::Bool => "Bool",
        Scalar::String => "Str",
        Scalar::Bytes => "Bytes",
        Scalar::SharedBytes => "SharedBytes",
    };
    let name = format_ident!("{}", name);
    quote!(_enc::#name)
}

/// The element type of a field (what one value is, before `Option`, `Vec` or `Box`).
fn element_type(kind: &FieldKind) -> TokenStream {
    match kind {
        FieldKind::Scalar(s) => scalar_type(*s),
        FieldKind::Enum(ty) => path(&ty.rust_path),
        FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } => path(&ty.rust_path),
        FieldKind::Map { .. } => quote!(()),
    }
}

/// The codec marker of a field's values.
pub(super) fn codec(field: &Field) -> TokenStream {
    match &field.kind {
        FieldKind::Scalar(s) => scalar_codec(*s, field.validate_utf8),
        FieldKind::Enum(ty) => enum_codec(ty),
        FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } => message_codec(ty),
        FieldKind::Map { .. } => quote!(()),
    }
}

/// The codec marker of a field at a call that has the field's value: the value's type names the
/// enum or message, so the marker leaves it to inference (`Enum<_>`), which keeps long type
/// paths out of every codec call of the generated text.
fn inferred_codec(field: &Field) -> TokenStream {
    match &field.kind {
        FieldKind::Enum(ty) if ty.closed => quote!(_enc::ClosedEnum<_>),
        FieldKind::Enum(_) => quote!(_enc::Enum<_>),
        FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } if ty.recursive => {
            quote!(_enc::RecMsg<_>)
        }
        FieldKind::Message { .. } | FieldKind::Group { .. } => quote!(_enc::Msg<_>),
        _ => codec(field),
    }
}

/// `Enum<E>`, or `ClosedEnum<E>` for a closed enum, whose undeclared numbers go to the
/// unknown fields.
fn enum_codec(ty: &TypeRef) -> TokenStream {
    let rust = path(&ty.rust_path);
    if ty.closed {
        quote!(_enc::ClosedEnum<#rust>)
    } else {
        quote!(_enc::Enum<#rust>)
    }
}

/// The codec markers of a map field's keys and values.
pub(super) fn map_codecs(field: &Field) -> (TokenStream, TokenStream) {
    match &field.kind {
        FieldKind::Map { key, value } => (
            scalar_codec(*key, field.validate_utf8),
            map_value_parts(value, field.validate_utf8).1,
        ),
        _ => (quote!(()), quote!(())),
    }
}

fn map_value_parts(value: &MapValue, validate_utf8: bool) -> (TokenStream, TokenStream) {
    match value {
        MapValue::Scalar(s) => (scalar_type(*s), scalar_codec(*s, validate_utf8)),
        MapValue::Enum(ty) => (path(&ty.rust_path), enum_codec(ty)),
        MapValue::Message(ty) => (path(&ty.rust_path), message_codec(ty)),
    }
}

/// Whether a field's codec can refuse a well-formed value (`Codec::try_merge`): a closed enum,
/// or a string without UTF-8 validation. Such a field's value can land in the unknown fields,
/// so its merge code is handed them (as every map's is: see `merge_map_entry`).
fn refuses(field: &Field) -> bool {
    match &field.kind {
        FieldKind::Scalar(s) => *s == Scalar::String && !field.validate_utf8,
        FieldKind::Enum(ty) => ty.closed,
        FieldKind::Map { .. } | FieldKind::Message { .. } | FieldKind::Group { .. } => false,
    }
}

/// Whether a field is a string without UTF-8 validation (`LaxStr`).
fn is_lax_string(field: &Field) -> bool {
    matches!(field.kind, FieldKind::Scalar(Scalar::String)) && !field.validate_utf8
}

/// The wire type of one value of a scalar.
fn scalar_wire_type(s: Scalar) -> u32 {
    match s {
        Scalar::Int32
        | Scalar::Int64
        | Scalar::UInt32
        | Scalar::UInt64
        | Scalar::SInt32
        | Scalar::SInt64
        | Scalar::Bool => 0,
        Scalar::Fixed64 | Scalar::SFixed64 | Scalar::Double => 1,
        Scalar::String | Scalar::Bytes | Scalar::SharedBytes => 2,
        Scalar::Fixed32 | Scalar::SFixed32 | Scalar::Float => 5,
    }
}

/// The keys (field number and wire type) under which a field's values are read. Decoding
/// matches whole keys, so a known field that arrives with another wire type falls through to
/// the unknown fields, as protobuf's reference parsers keep it; repeated scalars take both the
/// packed and the unpacked form, whatever they are written as.
fn tags(field: &Field) -> Vec<u32> {
    let wire_type = match &field.kind {
        FieldKind::Scalar(s) => scalar_wire_type(*s),
        FieldKind::Enum(_) => 0,
        FieldKind::Message { .. } | FieldKind::Map { .. } => 2,
        FieldKind::Group { .. } => 3,
    };
    let key = |wire_type: u32| (field.number << 3) | wire_type;
    let packable = matches!(wire_type, 0 | 1 | 5);
    if matches!(field.cardinality, Cardinality::Repeated { .. }) && packable {
        vec![key(wire_type), key(2)]
    } else {
        vec![key(wire_type)]
    }
}

/// A match pattern for a set of keys.
fn tag_pattern(tags: &[u32]) -> TokenStream {
    let tags = tags.iter().map(|&t| num(t));
    quote!(#(#tags)|*)
}

/// `group_len`, or `rec_group_len` for a group on a cycle of message types.
fn group_len_fn(kind: &FieldKind) -> TokenStream {
    match kind {
        FieldKind::Group { ty, .. } if ty.recursive => quote!(rec_group_len),
        _ => quote!(group_len),
    }
}

/// `Msg<M>`, or `RecMsg<M>` for a field on a cycle of message types, whose encoding counts
/// the nesting (values of other fields nest no deeper than the schema).
fn message_codec(ty: &TypeRef) -> TokenStream {
    let rust = path(&ty.rust_path);
    if ty.recursive {
        quote!(_enc::RecMsg<#rust>)
    } else {
        quote!(_enc::Msg<#rust>)
    }
}

pub(super) fn is_boxed(kind: &FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Message { boxed: true, .. } | FieldKind::Group { boxed: true, .. }
    )
}

/// The struct member's type.
fn field_type(field: &Field, options_map: MapType) -> TokenStream {
    if let FieldKind::Map { key, value } = &field.kind {
        let key = scalar_type(*key);
        let (value, _) = map_value_parts(value, field.validate_utf8);
        return match options_map {
            MapType::Hash => quote!(::std::collections::HashMap<#key, #value>),
            MapType::BTree => quote!(::std::collections::BTreeMap<#key, #value>),
        };
    }
    let mut elem = element_type(&field.kind);
    if is_boxed(&field.kind) {
        elem = quote!(::std::boxed::Box<#elem>);
    }
    match field.cardinality {
        Cardinality::Implicit | Cardinality::OneofMember => elem,
        Cardinality::Optional | Cardinality::Required => quote!(::core::option::Option<#elem>),
        Cardinality::Repeated { .. } => quote!(::std::vec::Vec<#elem>),
    }
}

/// The three pieces of code one struct member contributes to the `Message` impl.
struct FieldCode {
    len: TokenStream,
    encode: TokenStream,
    merge_arm: TokenStream,
}

/// Where a refused value goes (see [`refuses`]): the message's unknown fields, or nowhere
/// when the message drops them.
fn unknown_target(keep_unknown: bool) -> TokenStream {
    if keep_unknown {
        quote!(&mut self.unknown_fields)
    } else {
        quote!(&mut ())
    }
}

fn field_code(field: &Field, keep_unknown: bool) -> FieldCode {
    let name = ident(&field.rust_name);
    let n = num(field.number);
    let e = quote!(_enc);
    let this = quote!(self.#name);
    let pattern = tag_pattern(&tags(field));
    let unknown = unknown_target(keep_unknown);
    let refuses = refuses(field);
    let deref = if is_boxed(&field.kind) {
        quote!(&**value)
    } else {
        quote!(value)
    };
    let get_or_insert = if is_boxed(&field.kind) {
        quote!(&mut **#this.get_or_insert_with(::core::default::Default::default))
    } else {
        quote!(#this.get_or_insert_with(::core::default::Default::default))
    };

    if let FieldKind::Map { key, value } = &field.kind {
        let k = scalar_codec(*key, field.validate_utf8);
        let (_, v) = map_value_parts(value, field.validate_utf8);
        let merge = quote!(#e::merge_map_entry::<#k, #v, _>(&mut #this, r, #unknown)?);
        return FieldCode {
            len: quote!(len += #e::map_len::<#k, #v, _>(#n, &#this);),
            encode: quote!(#e::encode_map::<#k, #v, _>(#n, &#this, buf);),
            merge_arm: quote!(#pattern => #merge,),
        };
    }

    let c = inferred_codec(field);
    let is_group = matches!(field.kind, FieldKind::Group { .. });
    match field.cardinality {
        // Only scalars and enums lack presence (lowering gives message fields explicit
        // presence): the codec's `is_default` is the spec's test for leaving them off the wire
        // (empty strings and bytes, zero numbers, `false`, floats whose bits are all zero, so
        // that -0.0 is sent).
        Cardinality::Implicit => FieldCode {
            len: quote!(#e::implicit_len::<#c>(&mut len, #n, &#this);),
            encode: quote!(#e::encode_implicit::<#c>(#n, &#this, buf);),
            merge_arm: if refuses {
                quote!(#pattern => #e::merge_field_or_keep::<#c>(&mut #this, r, #unknown)?,)
            } else {
                quote!(#pattern => #e::merge_field::<#c>(&mut #this, r)?,)
            },
        },
        Cardinality::Optional | Cardinality::Required if is_group => FieldCode {
            len: {
                let group_len = group_len_fn(&field.kind);
                quote! {
                    if let ::core::option::Option::Some(value) = &#this {
                        len += #e::#group_len(#n, #deref);
                    }
                }
            },
            encode: quote! {
                if let ::core::option::Option::Some(value) = &#this {
                    #e::encode_group(#n, #deref, buf);
                }
            },
            merge_arm: quote!(#pattern => #e::merge_group(tag, #get_or_insert, r)?,),
        },
        Cardinality::Optional | Cardinality::Required => {
            let merge_arm = if matches!(field.kind, FieldKind::Message { .. }) {
                quote!(#pattern => #e::merge_field::<#c>(#get_or_insert, r)?,)
            } else if refuses {
                quote!(#pattern => #e::merge_optional_or_keep::<#c>(&mut #this, r, #unknown)?,)
            } else {
                quote!(#pattern => #e::merge_optional::<#c>(&mut #this, r)?,)
            };
            let value = if is_boxed(&field.kind) {
                quote!(#this.as_deref())
            } else {
                quote!(#this.as_ref())
            };
            FieldCode {
                len: quote!(#e::optional_len::<#c>(&mut len, #n, #value);),
                encode: quote!(#e::encode_optional::<#c>(#n, #value, buf);),
                merge_arm,
            }
        }
        Cardinality::Repeated { .. } if is_group => {
            let elem = element_type(&field.kind);
            let group_len = group_len_fn(&field.kind);
            FieldCode {
                len: quote! {
                    for value in &#this {
                        len += #e::#group_len(#n, value);
                    }
                },
                encode: quote! {
                    for value in &#this {
                        #e::encode_group(#n, value, buf);
                    }
                },
                merge_arm: quote! {
                    #pattern => {
                        let mut value = <#elem as ::core::default::Default>::default();
                        #e::merge_group(tag, &mut value, r)?;
                        #this.push(value);
                    }
                },
            }
        }
        Cardinality::Repeated { packed } => {
            let (len_fn, encode_fn) = if packed {
                (quote!(packed_len), quote!(encode_packed))
            } else {
                (quote!(repeated_len), quote!(encode_repeated))
            };
            let merge = if refuses {
                quote!(#e::merge_repeated_or_keep::<#c>(tag, &mut #this, r, #unknown)?)
            } else {
                quote!(#e::merge_repeated::<#c>(tag, &mut #this, r)?)
            };
            FieldCode {
                len: quote!(len += #e::#len_fn::<#c>(#n, &#this);),
                encode: quote!(#e::#encode_fn::<#c>(#n, &#this, buf);),
                merge_arm: quote!(#pattern => #merge,),
            }
        }
        Cardinality::OneofMember => FieldCode {
            len: TokenStream::new(),
            encode: TokenStream::new(),
            merge_arm: TokenStream::new(),
        },
    }
}

/// A message struct, its `Message` impl, accessors, and its module of nested types.
pub(super) fn message(msg: &Message, scope: &Scope) -> TokenStream {
    let name = ident(&msg.rust_name);
    let module = ident(&msg.module_name);
    let full_name = &msg.full_name;

    let mut extra_docs = Vec::new();
    if !msg.reserved_ranges.is_empty() {
        let ranges: Vec<String> = msg
            .reserved_ranges
            .iter()
            .map(|&(start, end)| match (start, end) {
                (s, e) if s == e => s.to_string(),
                (s, 536_870_911) => format!("{s} to max"),
                (s, e) => format!("{s} to {e}"),
            })
            .collect();
        extra_docs.push(format!("Reserved field numbers: {}.", ranges.join(", ")));
    }
    if !msg.reserved_names.is_empty() {
        let names: Vec<String> = msg
            .reserved_names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect();
        extra_docs.push(format!("Reserved field names: {}.", names.join(", ")));
    }
    if let Some(wanted) = &msg.renamed_from {
        extra_docs.push(super::renamed_type_line(&msg.rust_name, wanted));
    }
    let docs = doc_attrs(&msg.comments, &extra_docs);
    let deprecated = deprecated_attr(msg.deprecated);
    let allow = allow_deprecated(msg.touches_deprecated());
    let user_attributes = user_attrs(&msg.attributes);

    // Struct members.
    let mut members = Vec::new();
    for field in &msg.fields {
        let fname = ident(&field.rust_name);
        let ty = field_type(field, scope.options.map_type);
        let docs = field_docs(field);
        let deprecated = deprecated_attr(field.deprecated);
        let attributes = user_attrs(&field.attributes);
        members.push(quote! {
            #docs
            #deprecated
            #attributes
            pub #fname: #ty,
        });
    }
    for oneof in &msg.oneofs {
        let fname = ident(&oneof.rust_field);
        let enum_name = ident(&oneof.rust_enum);
        let note = rename_note(
            &oneof.proto_name,
            &oneof.rust_field,
            oneof.field_renamed_from.as_ref(),
        );
        let docs = doc_attrs(&oneof.comments, note.as_slice());
        members.push(quote! {
            #docs
            pub #fname: ::core::option::Option<#module::#enum_name>,
        });
    }
    if msg.keep_unknown {
        members.push(quote! {
            /// Fields this message received that its schema does not declare.
            pub unknown_fields: ::rust_rpc::UnknownFields,
        });
    }

    // Encoding, in field-number order. A oneof whose members other fields interleave with is
    // written in runs: each run at its place, for the member that is set if it is in the run.
    enum Part<'a> {
        Field(&'a Field),
        /// A oneof; `run` lists the members of this run, or is `None` when one run holds them
        /// all. `first` marks the run that also counts the oneof's length and merges it.
        Oneof {
            oneof: &'a Oneof,
            run: Option<Vec<&'a Field>>,
            first: bool,
        },
    }
    let mut parts: Vec<(u32, Part<'_>)> = msg
        .fields
        .iter()
        .map(|f| (f.number, Part::Field(f)))
        .collect();
    for oneof in &msg.oneofs {
        let mut members: Vec<&Field> = oneof.fields.iter().collect();
        members.sort_by_key(|f| f.number);
        let others: Vec<u32> = msg
            .fields
            .iter()
            .map(|f| f.number)
            .chain(
                msg.oneofs
                    .iter()
                    .filter(|o| !std::ptr::eq(*o, oneof))
                    .flat_map(|o| o.fields.iter().map(|f| f.number)),
            )
            .collect();
        let mut runs: Vec<Vec<&Field>> = Vec::new();
        for member in members {
            let splits = runs.last().and_then(|run| run.last()).is_some_and(|prev| {
                others
                    .iter()
                    .any(|n| *n > prev.number && *n < member.number)
            });
            match runs.last_mut() {
                Some(run) if !splits => run.push(member),
                _ => runs.push(vec![member]),
            }
        }
        let whole = runs.len() <= 1;
        for (i, run) in runs.into_iter().enumerate() {
            let lowest = run.first().map_or(0, |f| f.number);
            parts.push((
                lowest,
                Part::Oneof {
                    oneof,
                    run: (!whole).then_some(run),
                    first: i == 0,
                },
            ));
        }
    }
    parts.sort_by_key(|(n, _)| *n);
    let mut len_stmts = Vec::new();
    let mut encode_stmts = Vec::new();
    let mut merge_arms = Vec::new();
    for (_, part) in &parts {
        match part {
            Part::Field(field) => {
                let code = field_code(field, msg.keep_unknown);
                len_stmts.push(code.len);
                encode_stmts.push(code.encode);
                merge_arms.push(code.merge_arm);
            }
            Part::Oneof { oneof, run, first } => {
                let fname = ident(&oneof.rust_field);
                let enum_name = ident(&oneof.rust_enum);
                if *first {
                    len_stmts.push(quote! {
                        if let ::core::option::Option::Some(value) = &self.#fname {
                            len += value.encoded_len();
                        }
                    });
                    let keys: Vec<u32> = oneof.fields.iter().flat_map(tags).collect();
                    let pattern = tag_pattern(&keys);
                    let unknown = if oneof.fields.iter().any(refuses) {
                        let target = unknown_target(msg.keep_unknown);
                        quote!(, #target)
                    } else {
                        TokenStream::new()
                    };
                    merge_arms.push(quote! {
                        #pattern => #module::#enum_name::merge(&mut self.#fname, tag, r #unknown)?,
                    });
                }
                match run {
                    None => encode_stmts.push(quote! {
                        if let ::core::option::Option::Some(value) = &self.#fname {
                            value.encode_raw(buf);
                        }
                    }),
                    Some(run) => {
                        let variants = run.iter().map(|f| ident(&f.rust_name));
                        let mut pattern = quote!(#(#module::#enum_name::#variants(_))|*);
                        if run.len() > 1 {
                            pattern = quote!((#pattern));
                        }
                        encode_stmts.push(quote! {
                            if let ::core::option::Option::Some(value @ #pattern) = &self.#fname {
                                value.encode_raw(buf);
                            }
                        });
                    }
                }
            }
        }
    }
    let has_parts = !parts.is_empty();
    if msg.keep_unknown {
        // A proto2 string that was not UTF-8 waits in the unknown fields only until a value
        // replaces it; one the program set since (the field is set again) makes it stale.
        let mut stale = Vec::new();
        for f in msg.fields.iter().filter(|f| is_lax_string(f)) {
            let fname = ident(&f.rust_name);
            let tag = num(tags(f)[0]);
            match f.cardinality {
                Cardinality::Optional | Cardinality::Required => {
                    stale.push(quote!(if self.#fname.is_some() { #tag } else { 0 }));
                }
                Cardinality::Implicit => {
                    stale.push(quote!(if self.#fname.is_empty() { 0 } else { #tag }));
                }
                _ => {}
            }
        }
        for oneof in &msg.oneofs {
            let fname = ident(&oneof.rust_field);
            for f in oneof.fields.iter().filter(|f| is_lax_string(f)) {
                let tag = num(tags(f)[0]);
                stale.push(quote!(if self.#fname.is_some() { #tag } else { 0 }));
            }
        }
        // Likewise a map entry whose string was not UTF-8, once the program sets its key.
        let replaced: Vec<TokenStream> = msg
            .fields
            .iter()
            .filter_map(|f| match &f.kind {
                // Only a value can be replaced: a key that is not UTF-8 is no key the program
                // can set.
                FieldKind::Map { key, value }
                    if !f.validate_utf8 && matches!(value, MapValue::Scalar(Scalar::String)) =>
                {
                    let fname = ident(&f.rust_name);
                    let tag = num(tags(f)[0]);
                    let k = scalar_codec(*key, f.validate_utf8);
                    let (_, v) = map_value_parts(value, f.validate_utf8);
                    Some(quote! {
                        #tag => _enc::map_entry_replaced::<#k, #v, _>(&self.#fname, entry),
                    })
                }
                _ => None,
            })
            .collect();
        if !replaced.is_empty() {
            let pick = quote! {
                |tag, entry| match tag {
                    #(#replaced)*
                    _ => false,
                }
            };
            // The common case, nothing kept, skips building the list of stale keys.
            len_stmts.push(quote! {
                if !self.unknown_fields.is_empty() {
                    len += self.unknown_fields.encoded_len_except_entries(&[#(#stale),*], #pick);
                }
            });
            encode_stmts.push(quote! {
                if !self.unknown_fields.is_empty() {
                    self.unknown_fields.encode_except_entries(&[#(#stale),*], #pick, buf);
                }
            });
        } else if stale.is_empty() {
            len_stmts.push(quote!(len += self.unknown_fields.encoded_len();));
            encode_stmts.push(quote!(self.unknown_fields.encode(buf);));
        } else {
            len_stmts.push(quote! {
                if !self.unknown_fields.is_empty() {
                    len += self.unknown_fields.encoded_len_except(&[#(#stale),*]);
                }
            });
            encode_stmts.push(quote! {
                if !self.unknown_fields.is_empty() {
                    self.unknown_fields.encode_except(&[#(#stale),*], buf);
                }
            });
        }
    }
    let encoded_len_body = if len_stmts.is_empty() {
        quote!(0)
    } else {
        quote! {
            let mut len = 0;
            #(#len_stmts)*
            len
        }
    };
    let buf_param = if encode_stmts.is_empty() {
        quote!(_buf)
    } else {
        quote!(buf)
    };
    let unknown_arm = if msg.keep_unknown {
        quote!(r.keep_unknown(tag, &mut self.unknown_fields)?)
    } else {
        quote!(r.skip_field(tag)?)
    };
    let merge_loop_body = if has_parts {
        quote! {
            match tag {
                #(#merge_arms)*
                _ => #unknown_arm,
            }
        }
    } else {
        quote!(#unknown_arm;)
    };

    // Each body names the encoding module through a short alias, only where it uses it:
    // plain fields do; oneofs and unknown fields call methods of their own.
    let alias = if msg.fields.is_empty() {
        TokenStream::new()
    } else {
        quote!(
            use ::rust_rpc::encoding as _enc;
        )
    };
    let (use_len, use_encode, use_merge) = (alias.clone(), alias.clone(), alias);

    let missing_required = missing_required(msg, &module);
    let clear = clear_in_place(msg);
    // Extensions live in the unknown fields (see `rust_rpc::extension`).
    let extendable = if msg.extendable {
        quote! {
            #allow
            impl ::rust_rpc::Extendable for #name {
                fn unknown_fields(&self) -> &::rust_rpc::UnknownFields {
                    &self.unknown_fields
                }
                fn unknown_fields_mut(&mut self) -> &mut ::rust_rpc::UnknownFields {
                    &mut self.unknown_fields
                }
            }
        }
    } else {
        TokenStream::new()
    };
    let accessors = accessors(msg);
    let nested = nested_module(msg, scope);
    let json = super::json::json_impls(msg, scope, &allow);
    let text = super::text::text_impl(msg, scope, &allow);

    // With unknown fields kept, `Debug` is written out, to leave them out while empty: they
    // are empty in nearly every value a program prints.
    let (derive_debug, debug_impl) = if msg.keep_unknown {
        let names = msg
            .fields
            .iter()
            .map(|f| &f.rust_name)
            .chain(msg.oneofs.iter().map(|o| &o.rust_field));
        let members = names.clone();
        let labels = names.map(|n| n.unraw());
        let label = msg.rust_name.unraw();
        (
            TokenStream::new(),
            quote! {
                #allow
                impl ::core::fmt::Debug for #name {
                    #[inline]
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut s = f.debug_struct(#label);
                        #(s.field(#labels, &self.#members);)*
                        if !self.unknown_fields.is_empty() {
                            s.field("unknown_fields", &self.unknown_fields);
                        }
                        s.finish()
                    }
                }
            },
        )
    } else {
        (quote!(, Debug), TokenStream::new())
    };

    quote! {
        #docs
        #deprecated
        #[derive(Clone, PartialEq #derive_debug, Default)]
        #allow
        #user_attributes
        pub struct #name {
            #(#members)*
        }

        #debug_impl

        #allow
        impl ::rust_rpc::Name for #name {
            const FULL_NAME: &'static str = #full_name;
        }

        // Not `#[inline]`: that would leave the codec to the crates that use it, but compile a
        // copy in each of their codegen units and inline message into message (a program
        // round-tripping googleads' `GoogleAdsRow` took 116 s to build in release, against
        // 24 s with prost's code). Compiled here, it is compiled once.
        #allow
        impl ::rust_rpc::Message for #name {
            fn encoded_len(&self) -> usize {
                #use_len
                #encoded_len_body
            }

            fn encode_raw(&self, #buf_param: &mut ::std::vec::Vec<u8>) {
                #use_encode
                #(#encode_stmts)*
            }

            fn merge_from(
                &mut self,
                r: &mut ::rust_rpc::encoding::Reader<'_>,
            ) -> ::core::result::Result<(), ::rust_rpc::DecodeError> {
                #use_merge
                while let ::core::option::Option::Some(tag) = r.next_tag()? {
                    #merge_loop_body
                }
                ::core::result::Result::Ok(())
            }

            #missing_required
            #clear
        }

        #json
        #text
        #extendable
        #accessors
        #nested
    }
}

/// `clear` for a message with fields that hold allocations (strings, byte strings, repeated
/// fields, maps): it empties them and keeps their capacity, so a message cleared and merged
/// again reuses them (C++'s `Clear()`). Other messages keep the trait's `*self = default`,
/// which is as good for them.
fn clear_in_place(msg: &Message) -> TokenStream {
    let keeps_capacity = |f: &&Field| {
        matches!(
            (&f.cardinality, &f.kind),
            (Cardinality::Repeated { .. }, _)
                | (_, FieldKind::Map { .. })
                | (
                    Cardinality::Implicit,
                    FieldKind::Scalar(Scalar::String | Scalar::Bytes)
                )
        )
    };
    let kept: Vec<_> = msg.fields.iter().filter(keeps_capacity).collect();
    if kept.is_empty() {
        return TokenStream::new();
    }
    let mut names: Vec<TokenStream> = kept
        .iter()
        .map(|f| ident(&f.rust_name).into_token_stream())
        .collect();
    if msg.keep_unknown {
        names.push(quote!(unknown_fields));
    }
    if kept.len() == msg.fields.len() && msg.oneofs.is_empty() {
        return quote! {
            fn clear(&mut self) {
                #(self.#names.clear();)*
            }
        };
    }
    // The fields that hold nothing are reset at once, as `Default` makes them.
    quote! {
        fn clear(&mut self) {
            use ::rust_rpc::encoding as _enc;
            *self = Self {
                #(#names: _enc::cleared(&mut self.#names),)*
                ..::core::default::Default::default()
            };
        }
    }
}

/// `collect_missing_required` for a message that can reach a `required` field: its own unset
/// ones by name, then those of the messages it holds, each under its path.
fn missing_required(msg: &Message, module: &proc_macro2::Ident) -> TokenStream {
    if !msg.reaches_required {
        return TokenStream::new();
    }
    // Walks `value` (a `&M` or `&Box<M>`) under `prefix`, a `format!` string.
    let walk = |value: TokenStream, prefix: TokenStream| {
        quote! {
            ::rust_rpc::Message::collect_missing_required(
                #value, &::std::format!(#prefix), depth + 1, out,
            );
        }
    };
    let reaches = |kind: &FieldKind| match kind {
        FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } => ty.reaches_required,
        FieldKind::Map {
            value: MapValue::Message(ty),
            ..
        } => ty.reaches_required,
        _ => false,
    };
    let mut checks = Vec::new();
    for f in &msg.fields {
        let fname = ident(&f.rust_name);
        let proto = &f.proto_name;
        let deref = if is_boxed(&f.kind) {
            quote!(&**value)
        } else {
            quote!(value)
        };
        if f.cardinality == Cardinality::Required {
            let missing = format!("{{path}}{proto}");
            checks.push(quote! {
                if self.#fname.is_none() {
                    out.push(::std::format!(#missing));
                }
            });
        }
        if !reaches(&f.kind) {
            continue;
        }
        checks.push(match (&f.kind, f.cardinality) {
            (FieldKind::Map { .. }, _) => {
                let walk = walk(quote!(value), {
                    let prefix = format!("{{path}}{proto}[{{key:?}}].");
                    quote!(#prefix)
                });
                quote!(for (key, value) in &self.#fname { #walk })
            }
            (_, Cardinality::Repeated { .. }) => {
                let walk = walk(quote!(value), {
                    let prefix = format!("{{path}}{proto}[{{i}}].");
                    quote!(#prefix)
                });
                quote!(for (i, value) in self.#fname.iter().enumerate() { #walk })
            }
            _ => {
                let walk = walk(deref, {
                    let prefix = format!("{{path}}{proto}.");
                    quote!(#prefix)
                });
                quote!(if let ::core::option::Option::Some(value) = &self.#fname { #walk })
            }
        });
    }
    for oneof in &msg.oneofs {
        let fname = ident(&oneof.rust_field);
        let enum_name = ident(&oneof.rust_enum);
        for f in oneof.fields.iter().filter(|f| reaches(&f.kind)) {
            let variant = ident(&f.rust_name);
            let deref = if is_boxed(&f.kind) {
                quote!(&**value)
            } else {
                quote!(value)
            };
            let prefix = format!("{{path}}{}.", f.proto_name);
            let walk = walk(deref, quote!(#prefix));
            checks.push(quote! {
                if let ::core::option::Option::Some(#module::#enum_name::#variant(value)) = &self.#fname {
                    #walk
                }
            });
        }
    }
    quote! {
        fn collect_missing_required(
            &self,
            path: &str,
            depth: u32,
            out: &mut ::std::vec::Vec<::std::string::String>,
        ) {
            if depth > ::rust_rpc::encoding::ENCODE_RECURSION_LIMIT {
                return;
            }
            #(#checks)*
        }
    }
}

fn field_docs(field: &Field) -> TokenStream {
    let note = rename_note(
        &field.proto_name,
        &field.rust_name,
        field.renamed_from.as_ref(),
    );
    doc_attrs(&field.comments, note.as_slice())
}

/// Literal tokens for a proto2 default value.
fn default_literal(value: &DefaultValue) -> TokenStream {
    match value {
        DefaultValue::Bool(b) => quote!(#b),
        DefaultValue::I32(v) => {
            let lit = Literal::i32_unsuffixed(*v);
            quote!(#lit)
        }
        DefaultValue::I64(v) => {
            let lit = Literal::i64_unsuffixed(*v);
            quote!(#lit)
        }
        DefaultValue::U32(v) => {
            let lit = Literal::u32_unsuffixed(*v);
            quote!(#lit)
        }
        DefaultValue::U64(v) => {
            let lit = Literal::u64_unsuffixed(*v);
            quote!(#lit)
        }
        DefaultValue::F32(v) => float_literal(f64::from(*v), true),
        DefaultValue::F64(v) => float_literal(*v, false),
        DefaultValue::String(s) => quote!(#s),
        DefaultValue::Bytes(b) => {
            let lit = Literal::byte_string(b);
            quote!(#lit)
        }
        DefaultValue::Enum { ty, constant } => {
            let ty = path(ty);
            let c = ident(constant);
            quote!(#ty::#c)
        }
    }
}

fn float_literal(v: f64, is_f32: bool) -> TokenStream {
    let ty = if is_f32 { quote!(f32) } else { quote!(f64) };
    if v.is_nan() {
        quote!(#ty::NAN)
    } else if v == f64::INFINITY {
        quote!(#ty::INFINITY)
    } else if v == f64::NEG_INFINITY {
        quote!(#ty::NEG_INFINITY)
    } else if is_f32 {
        let lit = Literal::f32_suffixed(v as f32);
        quote!(#lit)
    } else {
        let lit = Literal::f64_suffixed(v);
        quote!(#lit)
    }
}

/// Getters for fields with explicit presence, returning the declared default when unset.
fn accessors(msg: &Message) -> TokenStream {
    let mut getters = Vec::new();
    for f in &msg.fields {
        if !matches!(f.cardinality, Cardinality::Optional | Cardinality::Required) {
            continue;
        }
        let fname = ident(&f.rust_name);
        let getter_name = ident(&f.getter_name);
        let proto_name = &f.proto_name;
        let mut doc = match &f.default {
            Some(_) => format!(" The value of `{proto_name}`, or its declared default when unset."),
            None => format!(" The value of `{proto_name}`, or the type's default when unset."),
        };
        if let Some(wanted) = &f.getter_renamed_from {
            doc.push_str(&format!(
                " Named `{}` because `{}` is a method messages have, or another getter's name.",
                f.getter_name.unraw(),
                wanted.unraw()
            ));
        }
        let fallback = match &f.default {
            Some(d) => {
                let lit = default_literal(d);
                quote!(.unwrap_or(#lit))
            }
            None => quote!(.unwrap_or_default()),
        };
        let getter = match &f.kind {
            FieldKind::Scalar(Scalar::String) => {
                quote!(pub fn #getter_name(&self) -> &str { self.#fname.as_deref() #fallback })
            }
            FieldKind::Scalar(Scalar::Bytes | Scalar::SharedBytes) => {
                quote!(pub fn #getter_name(&self) -> &[u8] { self.#fname.as_deref() #fallback })
            }
            FieldKind::Scalar(_) | FieldKind::Enum(_) => {
                let ty = element_type(&f.kind);
                quote!(pub fn #getter_name(&self) -> #ty { self.#fname #fallback })
            }
            _ => continue,
        };
        let deprecated = deprecated_attr(f.deprecated);
        let allows = super::method_name_allows(&f.getter_name);
        getters.push(quote! {
            #[doc = #doc]
            #deprecated
            #allows
            #getter
        });
    }
    if getters.is_empty() {
        return TokenStream::new();
    }
    let name = ident(&msg.rust_name);
    let allow = allow_deprecated(msg.touches_deprecated());
    quote! {
        #allow
        impl #name {
            #(#getters)*
        }
    }
}

/// The module holding a message's nested messages, nested enums and oneof enums.
fn nested_module(msg: &Message, scope: &Scope) -> TokenStream {
    if !msg.has_module() {
        return TokenStream::new();
    }
    let module = ident(&msg.module_name);
    let inner_scope = Scope {
        module: Some(msg.module_name.clone()),
        options: scope.options,
    };
    let enums = msg.nested_enums.iter().map(enumeration);
    let messages = msg.nested_messages.iter().map(|m| message(m, &inner_scope));
    let oneofs = msg.oneofs.iter().map(oneof_enum);
    let extensions = msg.extensions.iter().map(extension);
    let mut doc = if msg.extensions.is_empty() {
        format!(" Nested types and oneofs of `{}`.", msg.full_name)
    } else {
        format!(
            " Nested types, oneofs and extensions of `{}`.",
            msg.full_name
        )
    };
    if let Some(wanted) = &msg.module_renamed_from {
        doc.push(' ');
        doc.push_str(&super::renamed_type_line(&msg.module_name, wanted));
    }
    let inception = if scope.module.as_ref() == Some(&msg.module_name) {
        quote!(#[allow(clippy::module_inception)])
    } else {
        TokenStream::new()
    };
    quote! {
        #[doc = #doc]
        #inception
        pub mod #module {
            #(#enums)*
            #(#messages)*
            #(#oneofs)*
            #(#extensions)*
        }
    }
}

/// A oneof as an enum with one variant per member, plus its share of the codec.
fn oneof_enum(oneof: &Oneof) -> TokenStream {
    let name = ident(&oneof.rust_enum);
    let mut extra = vec![format!("Members of oneof `{}`.", oneof.proto_name)];
    if let Some(wanted) = &oneof.renamed_from {
        extra.push(super::renamed_type_line(&oneof.rust_enum, wanted));
    }
    let docs = doc_attrs(&oneof.comments, &extra);
    let e = quote!(_enc);
    let mut variants = Vec::new();
    let mut len_arms = Vec::new();
    let mut encode_arms = Vec::new();
    let mut merge_arms = Vec::new();
    for f in &oneof.fields {
        let variant = ident(&f.rust_name);
        let n = num(f.number);
        let elem = element_type(&f.kind);
        let boxed = is_boxed(&f.kind);
        let ty = if boxed {
            quote!(::std::boxed::Box<#elem>)
        } else {
            elem.clone()
        };
        let renamed = rename_note(&f.proto_name, &f.rust_name, f.renamed_from.as_ref());
        let docs = doc_attrs(&f.comments, renamed.as_slice());
        let deprecated = deprecated_attr(f.deprecated);
        let attributes = user_attrs(&f.attributes);
        variants.push(quote! {
            #docs
            #deprecated
            #attributes
            #variant(#ty),
        });
        let deref = if boxed {
            quote!(&**value)
        } else {
            quote!(value)
        };
        let c = inferred_codec(f);
        match &f.kind {
            FieldKind::Group { .. } => {
                let group_len = group_len_fn(&f.kind);
                len_arms.push(quote!(Self::#variant(value) => #e::#group_len(#n, #deref),));
                encode_arms
                    .push(quote!(Self::#variant(value) => #e::encode_group(#n, #deref, buf),));
            }
            _ => {
                len_arms.push(quote!(Self::#variant(value) => #e::field_len::<#c>(#n, #deref),));
                encode_arms.push(
                    quote!(Self::#variant(value) => #e::encode_field::<#c>(#n, #deref, buf),),
                );
            }
        }
        let wrap = if boxed {
            quote!(::std::boxed::Box::new(value))
        } else {
            quote!(value)
        };
        let merge_one = |target: TokenStream| match &f.kind {
            FieldKind::Group { .. } => quote!(#e::merge_group(tag, #target, r)?),
            _ => quote!(#e::merge_field::<#c>(#target, r)?),
        };
        let pattern = tag_pattern(&tags(f));
        let arm = match &f.kind {
            // A string that is not UTF-8 is still the oneof's latest value: it leaves the
            // oneof unset while it waits in the unknown fields. A closed enum's undeclared
            // number is an unknown field and changes nothing.
            _ if is_lax_string(f) => quote! {
                #pattern => match #e::read_or_keep::<#c>(r, unknown)? {
                    ::core::option::Option::Some(value) => {
                        *field = ::core::option::Option::Some(Self::#variant(value));
                    }
                    ::core::option::Option::None => *field = ::core::option::Option::None,
                },
            },
            _ if refuses(f) => quote! {
                #pattern => {
                    if let ::core::option::Option::Some(value) = #e::read_or_keep::<#c>(r, unknown)? {
                        *field = ::core::option::Option::Some(Self::#variant(value));
                    }
                }
            },
            FieldKind::Message { .. } | FieldKind::Group { .. } => {
                // A second occurrence of the same member merges into the first.
                let existing = merge_one(if boxed {
                    quote!(&mut **value)
                } else {
                    quote!(value)
                });
                let fresh = if matches!(f.kind, FieldKind::Group { .. }) {
                    let read = merge_one(quote!(&mut value));
                    quote!({
                        let mut value = <#elem as ::core::default::Default>::default();
                        #read;
                        *field = ::core::option::Option::Some(Self::#variant(#wrap));
                    })
                } else {
                    let read = quote!(#e::read_value::<#c>(r)?);
                    let read = if boxed {
                        quote!(::std::boxed::Box::new(#read))
                    } else {
                        read
                    };
                    quote!(*field = ::core::option::Option::Some(Self::#variant(#read)))
                };
                quote! {
                    #pattern => match field {
                        ::core::option::Option::Some(Self::#variant(value)) => #existing,
                        _ => #fresh,
                    },
                }
            }
            _ => quote! {
                #pattern => {
                    *field = ::core::option::Option::Some(Self::#variant(#e::read_value::<#c>(r)?));
                }
            },
        };
        merge_arms.push(arm);
    }
    let allow = allow_deprecated(oneof.fields.iter().any(Field::touches_deprecated));
    let user_attributes = user_attrs(&oneof.attributes);
    // Strings that were not UTF-8 wait in the unknown fields only until a later member
    // replaces them.
    let lax_tags: Vec<Literal> = oneof
        .fields
        .iter()
        .filter(|f| is_lax_string(f))
        .flat_map(tags)
        .map(num)
        .collect();
    let forget_replaced = if lax_tags.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            if field.is_some() {
                ::rust_rpc::encoding::UnknownSink::forget(unknown, &[#(#lax_tags),*]);
            }
        }
    };
    let unknown_param = if oneof.fields.iter().any(refuses) {
        quote!(unknown: &mut impl ::rust_rpc::encoding::UnknownSink,)
    } else {
        TokenStream::new()
    };
    quote! {
        #docs
        #[derive(Clone, PartialEq, Debug)]
        #[allow(clippy::large_enum_variant, clippy::enum_variant_names)]
        #allow
        #user_attributes
        pub enum #name {
            #(#variants)*
        }

        #allow
        impl #name {
            pub(super) fn encoded_len(&self) -> usize {
                use ::rust_rpc::encoding as _enc;
                match self {
                    #(#len_arms)*
                }
            }

            pub(super) fn encode_raw(&self, buf: &mut ::std::vec::Vec<u8>) {
                use ::rust_rpc::encoding as _enc;
                match self {
                    #(#encode_arms)*
                }
            }

            pub(super) fn merge(
                field: &mut ::core::option::Option<Self>,
                tag: u32,
                r: &mut ::rust_rpc::encoding::Reader<'_>,
                #unknown_param
            ) -> ::core::result::Result<(), ::rust_rpc::DecodeError> {
                use ::rust_rpc::encoding as _enc;
                match tag {
                    #(#merge_arms)*
                    _ => r.skip_field(tag)?,
                }
                #forget_replaced
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// A codec type written where the `_enc` alias of the encoding module is not in scope.
fn absolute(codec: TokenStream) -> TokenStream {
    codec
        .into_iter()
        .flat_map(|token| match &token {
            TokenTree::Ident(name) if name == "_enc" => {
                quote!(::rust_rpc::encoding).into_iter().collect::<Vec<_>>()
            }
            _ => vec![token],
        })
        .collect()
}

/// The typed identifier of an extension: a constant naming the extended message and the
/// value's codec, for `rust_rpc::Extendable`'s methods.
pub(super) fn extension(ext: &ExtensionDecl) -> TokenStream {
    let name = ident(&ext.const_name);
    let extendee = path(&ext.extendee.rust_path);
    let number = num(ext.field.number);
    // A group's value ends with an end-group key, so its codec carries the number.
    let codec = match &ext.field.kind {
        FieldKind::Group { ty, .. } => {
            let ty = path(&ty.rust_path);
            quote!(::rust_rpc::encoding::GroupCodec<#ty, #number>)
        }
        _ => absolute(codec(&ext.field)),
    };
    let full_name = &ext.full_name;
    let line = format!(
        "Extension `{}` of `{}`, field {}: `msg.extension(&{})` and `set_extension`, \
         with `rust_rpc::Extendable` in scope.",
        ext.full_name,
        ext.extendee.full_name,
        ext.field.number,
        ext.const_name.unraw(),
    );
    let mut extra = vec![line];
    extra.extend(rename_note(
        &ext.field.proto_name,
        &ext.const_name,
        ext.renamed_from.as_ref(),
    ));
    let docs = doc_attrs(&ext.field.comments, &extra);
    let deprecated = deprecated_attr(ext.field.deprecated);
    let allow = allow_deprecated(ext.field.touches_deprecated() || ext.extendee.deprecated);
    match ext.field.cardinality {
        Cardinality::Repeated { packed } => quote! {
            #docs
            #deprecated
            #allow
            pub const #name: ::rust_rpc::RepeatedExtension<#extendee, #codec> =
                ::rust_rpc::RepeatedExtension::new(#number, #full_name, #packed);
        },
        _ => quote! {
            #docs
            #deprecated
            #allow
            pub const #name: ::rust_rpc::Extension<#extendee, #codec> =
                ::rust_rpc::Extension::new(#number, #full_name);
        },
    }
}
