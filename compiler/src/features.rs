//! Protobuf's features, resolved: what decides a field's encoding and presence, an enum's
//! openness, a string's UTF-8 check. proto2 and proto3 are presets of them; editions files set
//! them per file, message, oneof, field and enum, each level over its parent's. `lower`
//! resolves them once per element and `emit` reads only the results (`Cardinality`,
//! `Field::validate_utf8`, `TypeRef::closed`, `FieldKind::Group`).
//!
//! The defaults follow `google/protobuf/descriptor.proto` (protobuf 36.2): proto2 is explicit
//! presence, closed enums, expanded repeated fields, no UTF-8 check; proto3 is implicit
//! presence, open enums, packed, UTF-8 checked; editions 2023 and 2024 are proto3's but with
//! explicit presence.

use rust_rpc::wkt::feature_set::{
    EnumType, FieldPresence, MessageEncoding, RepeatedFieldEncoding, Utf8Validation,
};
use rust_rpc::wkt::{Edition, FeatureSet, FileDescriptorProto};

/// The features that shape generated code, resolved for one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Features {
    pub presence: Presence,
    pub closed_enum: bool,
    pub packed: bool,
    pub validate_utf8: bool,
    pub delimited: bool,
}

/// Field presence: whether an unset singular field can be told from one set to its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    Explicit,
    Implicit,
    /// proto2's `required`, editions' `LEGACY_REQUIRED`.
    Required,
}

const PROTO2: Features = Features {
    presence: Presence::Explicit,
    closed_enum: true,
    packed: false,
    validate_utf8: false,
    delimited: false,
};

const PROTO3: Features = Features {
    presence: Presence::Implicit,
    closed_enum: false,
    packed: true,
    validate_utf8: true,
    delimited: false,
};

const EDITION_2023: Features = Features {
    presence: Presence::Explicit,
    ..PROTO3
};

/// The editions this generator knows the defaults of.
pub(crate) const SUPPORTED_EDITIONS: [Edition; 2] = [Edition::EDITION_2023, Edition::EDITION_2024];

impl Features {
    /// A file's features: its syntax's or edition's defaults with the file's own settings
    /// over them. Fails, with what to say, for an edition whose defaults are not known here.
    pub(crate) fn of_file(file: &FileDescriptorProto) -> Result<Features, String> {
        let defaults = match file.syntax() {
            "" | "proto2" => PROTO2,
            "proto3" => PROTO3,
            "editions" if SUPPORTED_EDITIONS.contains(&file.edition()) => EDITION_2023,
            "editions" => {
                let edition = file
                    .edition()
                    .name()
                    .map_or_else(|| file.edition().0.to_string(), str::to_owned);
                return Err(format!(
                    "edition {edition} is not supported: rust-rpc generates proto2, proto3 and editions 2023 and 2024"
                ));
            }
            other => return Err(format!("syntax \"{other}\" is not supported")),
        };
        Ok(defaults.with(file.options.as_ref().and_then(|o| o.features.as_ref())))
    }

    /// These features with `set`'s explicit settings over them (an unset feature, or an
    /// unknown value of one, keeps the parent's).
    pub(crate) fn with(mut self, set: Option<&FeatureSet>) -> Features {
        let Some(set) = set else {
            return self;
        };
        if let Some(presence) = set.field_presence {
            match presence {
                FieldPresence::EXPLICIT => self.presence = Presence::Explicit,
                FieldPresence::IMPLICIT => self.presence = Presence::Implicit,
                FieldPresence::LEGACY_REQUIRED => self.presence = Presence::Required,
                _ => {}
            }
        }
        if let Some(enum_type) = set.enum_type {
            match enum_type {
                EnumType::OPEN => self.closed_enum = false,
                EnumType::CLOSED => self.closed_enum = true,
                _ => {}
            }
        }
        if let Some(encoding) = set.repeated_field_encoding {
            match encoding {
                RepeatedFieldEncoding::PACKED => self.packed = true,
                RepeatedFieldEncoding::EXPANDED => self.packed = false,
                _ => {}
            }
        }
        if let Some(validation) = set.utf8_validation {
            match validation {
                Utf8Validation::VERIFY => self.validate_utf8 = true,
                Utf8Validation::NONE => self.validate_utf8 = false,
                _ => {}
            }
        }
        if let Some(encoding) = set.message_encoding {
            match encoding {
                MessageEncoding::LENGTH_PREFIXED => self.delimited = false,
                MessageEncoding::DELIMITED => self.delimited = true,
                _ => {}
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_rpc::wkt::FileOptions;

    fn file(syntax: &str, edition: Edition, features: Option<FeatureSet>) -> FileDescriptorProto {
        FileDescriptorProto {
            syntax: Some(syntax.to_owned()),
            edition: Some(edition),
            options: features.map(|f| FileOptions {
                features: Some(f),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn syntaxes_and_editions_have_their_defaults() {
        let proto2 = Features::of_file(&FileDescriptorProto::default()).unwrap();
        assert_eq!(proto2, PROTO2);
        let proto3 = Features::of_file(&file("proto3", Edition::default(), None)).unwrap();
        assert_eq!(proto3, PROTO3);
        let e2023 = Features::of_file(&file("editions", Edition::EDITION_2023, None)).unwrap();
        assert_eq!(e2023.presence, Presence::Explicit);
        assert!(!e2023.closed_enum && e2023.packed && e2023.validate_utf8);
        let err = Features::of_file(&file("editions", Edition::MAX, None)).unwrap_err();
        assert!(err.contains("EDITION_MAX is not supported"), "{err}");
    }

    #[test]
    fn each_level_overrides_what_it_sets() {
        let implicit = FeatureSet {
            field_presence: Some(FieldPresence::IMPLICIT),
            ..Default::default()
        };
        let file = Features::of_file(&file("editions", Edition::EDITION_2023, Some(implicit)))
            .expect("2023");
        assert_eq!(file.presence, Presence::Implicit);
        let field = file.with(Some(&FeatureSet {
            utf8_validation: Some(Utf8Validation::NONE),
            message_encoding: Some(MessageEncoding::DELIMITED),
            field_presence: Some(FieldPresence(77)),
            ..Default::default()
        }));
        assert_eq!(
            field.presence,
            Presence::Implicit,
            "an unknown value changes nothing"
        );
        assert!(!field.validate_utf8 && field.delimited && field.packed);
    }
}
