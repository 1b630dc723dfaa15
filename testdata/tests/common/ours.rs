//! Our generated code for each golden case: a golden that does not compile fails the tests.

pub mod scalars {
    include!("../../golden/scalars.rs");
}
pub mod proto3_optional {
    include!("../../golden/proto3_optional.rs");
}
pub mod repeated {
    include!("../../golden/repeated.rs");
}
pub mod maps {
    include!("../../golden/maps.rs");
}
pub mod oneofs {
    include!("../../golden/oneofs.rs");
}
pub mod nested {
    include!("../../golden/nested.rs");
}
pub mod enums {
    include!("../../golden/enums.rs");
}
pub mod proto2 {
    include!("../../golden/proto2.rs");
}
pub mod recursive {
    include!("../../golden/recursive.rs");
}
pub mod keywords {
    include!("../../golden/keywords.rs");
}
pub mod reserved {
    include!("../../golden/reserved.rs");
}
pub mod comments {
    include!("../../golden/comments.rs");
}
pub mod deprecated {
    include!("../../golden/deprecated.rs");
}
pub mod wkt {
    include!("../../golden/wkt.rs");
}
pub mod no_package {
    include!("../../golden/no_package.rs");
}
pub mod options_btree_discard {
    include!("../../golden/options_btree_discard.rs");
}
pub mod cross_package {
    include!("../../golden/cross_package/_include.rs");
}
