//! The intermediate representation: what `lower` builds from descriptors and `emit` turns into
//! Rust. Every named node keeps its proto name (for wire and routing strings) beside its Rust
//! identifier, and every type reference is already a resolved Rust path relative to the place
//! that uses it, so `emit` never looks anything up. Rust names are [`RustIdent`]s and paths
//! [`RustPath`]s, made only by `crate::ident`.

pub use crate::ident::{RustIdent, RustPath};

/// The output for one proto package: everything that goes into one `.rs` file.
#[derive(Debug, Clone)]
pub struct Package {
    /// The package's name as declared (`google.protobuf`; empty without one).
    pub name: String,
    /// The Rust module path of the package, outermost first (`["google", "protobuf"]`).
    pub module_path: Vec<RustIdent>,
    /// The names those modules wanted, which differ where one was taken (`foo` for `Foo`,
    /// named `foo_` beside a package `foo`); said in the include file.
    pub module_wanted: Vec<RustIdent>,
    /// The file it is written to (`google.protobuf.rs`).
    pub file_name: String,
    /// The `.proto` files whose contents this package holds, in input order.
    pub files: Vec<String>,
    pub messages: Vec<Message>,
    pub enums: Vec<Enum>,
    pub services: Vec<Service>,
    /// Extensions declared at the files' top level.
    pub extensions: Vec<ExtensionDecl>,
}

/// An `extend` field: a typed identifier (`const`) for reading and writing it in the messages
/// it extends (`rust_rpc::Extendable`).
#[derive(Debug, Clone)]
pub struct ExtensionDecl {
    /// The constant's name, such as `EXTRA`.
    pub const_name: RustIdent,
    /// The name the constant would have had when it was taken (`FLAG` for `flag` beside
    /// `FLAG`); said in its docs.
    pub renamed_from: Option<RustIdent>,
    /// Fully qualified name without the leading dot (`pkg.extra`, `pkg.Outer.extra`).
    pub full_name: String,
    /// The extended message, from the module the constant is in.
    pub extendee: TypeRef,
    /// The value's type, number and cardinality (`Optional` or `Repeated`), as for a field.
    pub field: Field,
}

/// Doc text taken from `SourceCodeInfo`, already split into lines.
#[derive(Debug, Clone, Default)]
pub struct Comments {
    pub leading: Vec<String>,
    pub trailing: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Message {
    /// Name as declared, such as `Inner`.
    #[allow(dead_code)] // kept for the JSON mapping and reflection, not generated yet
    pub proto_name: String,
    /// Fully qualified name without the leading dot, such as `pkg.Outer.Inner`.
    pub full_name: String,
    pub rust_name: RustIdent,
    /// The name the type would have had (`Twin`) when it was taken in its module and the
    /// type got another (`Twin_`); said in its docs.
    pub renamed_from: Option<RustIdent>,
    /// Name of the module that holds nested types and oneof enums, such as `outer`.
    pub module_name: RustIdent,
    /// The name the module would have had (`outer`) when it was taken and the module got
    /// another (`outer_`); said in its docs.
    pub module_renamed_from: Option<RustIdent>,
    pub fields: Vec<Field>,
    pub oneofs: Vec<Oneof>,
    pub nested_messages: Vec<Message>,
    pub nested_enums: Vec<Enum>,
    pub reserved_ranges: Vec<(u32, u32)>,
    pub reserved_names: Vec<String>,
    pub comments: Comments,
    pub deprecated: bool,
    /// Whether unknown fields are kept in an `unknown_fields` member.
    pub keep_unknown: bool,
    /// Whether the message holds a `required` field, itself or through its message fields, so
    /// it reports unset ones (`Message::missing_required_fields`).
    pub reaches_required: bool,
    /// Whether the message has extension ranges and keeps unknown fields, where its
    /// extensions live: it implements `rust_rpc::Extendable`.
    pub extendable: bool,
    /// Extensions declared inside the message; their constants go in its module.
    pub extensions: Vec<ExtensionDecl>,
    /// User-configured attributes for the struct.
    pub attributes: Vec<String>,
}

impl Field {
    /// Whether this field, or the type it refers to, is deprecated.
    pub fn touches_deprecated(&self) -> bool {
        let type_deprecated = match &self.kind {
            FieldKind::Enum(ty) | FieldKind::Message { ty, .. } | FieldKind::Group { ty, .. } => {
                ty.deprecated
            }
            FieldKind::Map {
                value: MapValue::Enum(ty) | MapValue::Message(ty),
                ..
            } => ty.deprecated,
            _ => false,
        };
        self.deprecated || type_deprecated
    }
}

impl Message {
    /// Whether the generated code for this message names anything deprecated.
    pub fn touches_deprecated(&self) -> bool {
        self.deprecated
            || self.fields.iter().any(Field::touches_deprecated)
            || self
                .oneofs
                .iter()
                .flat_map(|o| &o.fields)
                .any(Field::touches_deprecated)
    }

    /// Whether the message needs a companion module (nested types, oneofs, extensions).
    pub fn has_module(&self) -> bool {
        !self.nested_messages.is_empty()
            || !self.nested_enums.is_empty()
            || !self.oneofs.is_empty()
            || !self.extensions.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub proto_name: String,
    pub rust_name: RustIdent,
    /// The getter's name, for fields with explicit presence: the field's own, unless a trait
    /// method of messages or another getter has it (see `lower::MESSAGE_METHOD_NAMES`).
    pub getter_name: RustIdent,
    /// The name the field would have had (`foo_bar`) when it was taken and the field got
    /// another (`foo_bar_`); said in its docs.
    pub renamed_from: Option<RustIdent>,
    /// Likewise for the getter (`clone`, a method every message has, makes `clone_`).
    pub getter_renamed_from: Option<RustIdent>,
    pub number: u32,
    pub json_name: String,
    pub kind: FieldKind,
    pub cardinality: Cardinality,
    /// Whether decoding checks that `string` values are UTF-8 (proto3) and fails if not; where
    /// it does not (proto2), a value that is not UTF-8 is kept with the unknown fields.
    pub validate_utf8: bool,
    /// The proto2 `[default = ...]` value.
    pub default: Option<DefaultValue>,
    pub comments: Comments,
    pub deprecated: bool,
    /// User-configured attributes for the struct member or enum variant.
    pub attributes: Vec<String>,
}

/// How many values a field holds and whether its presence is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Proto3 singular field without `optional`: a plain value, omitted when default.
    Implicit,
    /// A field with explicit presence: `Option<T>` (message fields are always this).
    Optional,
    /// A proto2 `required` field: explicit presence as `Optional`, and an unset one is
    /// reported by `Message::missing_required_fields`.
    Required,
    /// A repeated field; `packed` says how it is encoded.
    Repeated { packed: bool },
    /// A member of a oneof; it lives in the oneof's enum.
    OneofMember,
}

#[derive(Debug, Clone)]
pub enum FieldKind {
    Scalar(Scalar),
    Enum(TypeRef),
    Message { ty: TypeRef, boxed: bool },
    Group { ty: TypeRef, boxed: bool },
    Map { key: Scalar, value: MapValue },
}

/// What a map's values are.
#[derive(Debug, Clone)]
pub enum MapValue {
    Scalar(Scalar),
    Enum(TypeRef),
    Message(TypeRef),
}

/// The scalar protobuf types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    UInt32,
    UInt64,
    SInt32,
    SInt64,
    Fixed32,
    Fixed64,
    SFixed32,
    SFixed64,
    Bool,
    String,
    Bytes,
    /// `bytes` generated as `bytes::Bytes` (the `bytes` option).
    SharedBytes,
}

impl Scalar {
    /// Whether repeated fields of this type may be packed.
    pub fn is_packable(self) -> bool {
        !matches!(self, Scalar::String | Scalar::Bytes | Scalar::SharedBytes)
    }
}

/// A reference to a generated message or enum.
#[derive(Debug, Clone)]
pub struct TypeRef {
    /// Fully qualified proto name without the leading dot.
    pub full_name: String,
    /// Rust path from the referring module, such as `super::other::Thing` or `::rust_rpc::wkt::Any`.
    pub rust_path: RustPath,
    /// Whether the referenced type is marked `deprecated`, so users of it must allow that.
    pub deprecated: bool,
    /// For a message field: whether the field's type can reach back to the message holding it
    /// (through fields of any cardinality), so values can nest without bound and encoding
    /// must count the nesting.
    pub recursive: bool,
    /// For an enum: whether it is closed (proto2), so a number it does not declare goes to the
    /// unknown fields instead of into the field.
    pub closed: bool,
    /// For a message: whether it holds a `required` field, itself or through its fields.
    pub reaches_required: bool,
}

/// A proto2 default value, already checked against the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    String(String),
    Bytes(Vec<u8>),
    /// The enum's Rust path and the value's constant name.
    Enum {
        ty: RustPath,
        constant: RustIdent,
    },
}

#[derive(Debug, Clone)]
pub struct Oneof {
    pub proto_name: String,
    /// The field in the message struct that holds the oneof.
    pub rust_field: RustIdent,
    /// The field's name had it not been taken (`foo2` beside a field `foo2`).
    pub field_renamed_from: Option<RustIdent>,
    /// The enum in the message's module that lists the members.
    pub rust_enum: RustIdent,
    /// The enum's name had it not been taken (`Kind` beside a nested `Kind`).
    pub renamed_from: Option<RustIdent>,
    pub fields: Vec<Field>,
    pub comments: Comments,
    /// User-configured attributes for the oneof's enum.
    pub attributes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Enum {
    #[allow(dead_code)] // kept for reflection, not generated yet
    pub proto_name: String,
    pub full_name: String,
    pub rust_name: RustIdent,
    /// As for messages: the name taken, when the enum got another.
    pub renamed_from: Option<RustIdent>,
    pub values: Vec<EnumValue>,
    pub comments: Comments,
    pub deprecated: bool,
    /// User-configured attributes for the enum's struct.
    pub attributes: Vec<String>,
}

impl Enum {
    /// Whether the generated code for this enum names anything deprecated.
    pub fn touches_deprecated(&self) -> bool {
        self.deprecated || self.values.iter().any(|v| v.deprecated)
    }
}

#[derive(Debug, Clone)]
pub struct EnumValue {
    pub proto_name: String,
    pub rust_name: RustIdent,
    pub number: i32,
    /// Set when an earlier value has the same number (`allow_alias`).
    pub alias_of: Option<RustIdent>,
    /// An alias whose constant name would repeat another's: it has no constant of its own.
    pub shares_const: bool,
    /// The constant the value would have had when it was taken and the value got another.
    pub renamed_from: Option<RustIdent>,
    pub comments: Comments,
    pub deprecated: bool,
}

/// A `service`: becomes a trait, a stub, a server adapter and a descriptor.
#[derive(Debug, Clone)]
pub struct Service {
    pub proto_name: String,
    pub full_name: String,
    /// The trait's name.
    pub rust_name: RustIdent,
    /// The trait's name had it not been taken in its module; said in its docs.
    pub renamed_from: Option<RustIdent>,
    /// The names of the types generated beside the trait.
    pub items: ServiceItems,
    /// The descriptor static, such as `ECHO_SERVICE_DESCRIPTOR`.
    pub descriptor_name: RustIdent,
    pub methods: Vec<Method>,
    pub comments: Comments,
    pub deprecated: bool,
}

/// The types generated for a service beside its trait: the trait's name with `Stub`,
/// `Client`, `Server`, `Dyn` and `Erased`, each with `_` appended while its module already has
/// the name.
#[derive(Debug, Clone)]
pub struct ServiceItems {
    pub stub: RustIdent,
    pub client: RustIdent,
    pub server: RustIdent,
    pub dyn_form: RustIdent,
    pub erased: RustIdent,
    /// The type parameters of the generated impls, for the channel (`C`) and the
    /// implementation (`T`): `_` appended while a type of the module has the name, which
    /// would be shadowed inside them.
    pub channel_param: RustIdent,
    pub impl_param: RustIdent,
    /// `(name, the name it would have had)` for each item that did not get its own name.
    pub renamed: Vec<(RustIdent, RustIdent)>,
}

#[derive(Debug, Clone)]
pub struct Method {
    pub proto_name: String,
    pub rust_name: RustIdent,
    /// The name the method would have had when it was reserved or taken (`into`, a method
    /// every type has, makes `into_`); said in its docs.
    pub renamed_from: Option<RustIdent>,
    /// The method's name on the service's object-safe trait (`erased_get`), apart from the
    /// trait's own so that importing both never makes a call ambiguous.
    pub erased_name: RustIdent,
    /// Position in the service: the `call_method` dispatch key.
    pub index: usize,
    pub input: TypeRef,
    pub output: TypeRef,
    pub client_streaming: bool,
    pub server_streaming: bool,
    pub comments: Comments,
    pub deprecated: bool,
}
