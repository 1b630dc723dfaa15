//! Generated names that meet names already in use: renamed by the documented rule (`_`
//! appended), and every renamed item still works.

use rust_rpc::{InProcessChannel, RpcController, Status};
use rust_rpc_testdata::ours::service_names::{
    Kv, KvClient, KvClient_, KvDyn_, KvServer, KvServer_, Kv_, Store, StoreClient, StoreServer,
    Store_,
};

struct Local;

impl Kv for Local {
    async fn clone_(&self, _: &mut RpcController, request: KvClient) -> Result<KvServer, Status> {
        Ok(KvServer {
            value: format!("clone_ of {}", request.key),
            ..Default::default()
        })
    }

    async fn get(&self, _: &mut RpcController, request: KvClient) -> Result<KvServer, Status> {
        Ok(KvServer {
            value: format!("get of {}", request.key),
            ..Default::default()
        })
    }

    async fn get_(&self, _: &mut RpcController, request: KvClient) -> Result<KvServer, Status> {
        Ok(KvServer {
            value: format!("get_ of {}", request.key),
            ..Default::default()
        })
    }

    async fn into_inner(
        &self,
        _: &mut RpcController,
        request: KvClient,
    ) -> Result<KvServer, Status> {
        Ok(KvServer {
            value: format!("into_inner of {}", request.key),
            ..Default::default()
        })
    }
}

fn key(key: &str) -> KvClient {
    KvClient {
        key: key.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn renamed_client_and_methods_reach_their_handlers() {
    let client = KvClient_::new(InProcessChannel::new(KvServer_::new(Local)));
    // `clone()` is still `Clone::clone`: the rpc `Clone` became `clone_`.
    let copy = client.clone();
    assert_eq!(copy.clone_(key("a")).await.unwrap().value, "clone_ of a");
    // `Get` and `get` differ in case only: two methods, each reaching its own rpc.
    assert_eq!(client.get(key("b")).await.unwrap().value, "get of b");
    assert_eq!(client.get_(key("c")).await.unwrap().value, "get_ of c");
    assert_eq!(
        client.into_inner(key("d")).await.unwrap().value,
        "into_inner of d"
    );
    // The rpc `New` is `new_`; `new` still makes a client. Unimplemented, it says so.
    let status = client.new_(key("e")).await.unwrap_err();
    assert_eq!(status.code(), rust_rpc::Code::Unimplemented);
    assert!(status.message().contains("New"), "{status:?}");
}

#[tokio::test]
async fn renamed_dyn_form_holds_an_implementation() {
    let held = KvDyn_::new(Local);
    let value = held
        .get_(&mut RpcController::new(), key("f"))
        .await
        .unwrap()
        .value;
    assert_eq!(value, "get_ of f");
}

struct Shelf;

impl Store_ for Shelf {
    async fn put(&self, _: &mut RpcController, request: Store) -> Result<Store, Status> {
        Ok(request)
    }
}

#[tokio::test]
async fn a_trait_renamed_for_a_message_of_its_name_serves() {
    let client = StoreClient::new(InProcessChannel::new(StoreServer::new(Shelf)));
    client.put(Store::default()).await.unwrap();
    // Both services named `Kv` in Rust are there, the second one renamed throughout: its stub
    // implements its own trait.
    fn implements_kv_<T: Kv_>() {}
    implements_kv_::<rust_rpc_testdata::ours::service_names::KvStub__<InProcessChannel>>();
}

struct Converter;

impl rust_rpc_testdata::ours::service_names::Conv for Converter {
    async fn into_(&self, _: &mut RpcController, request: Store) -> Result<Store, Status> {
        Ok(request)
    }
}

/// Rpcs named `Into`, `TryInto`, `Borrow` and `ToOwned` are called as `into_` and so on: the
/// client's own `Into::into` and friends stay what they are.
#[tokio::test]
async fn rpcs_named_like_every_types_methods_are_renamed() {
    use rust_rpc_testdata::ours::service_names::{ConvClient, ConvServer};
    let client = ConvClient::new(InProcessChannel::new(ConvServer::new(Converter)));
    assert_eq!(
        client.into_(Store::default()).await.unwrap(),
        Store::default()
    );
    let err = client.try_into_(Store::default()).await.unwrap_err();
    assert_eq!(err.code(), rust_rpc::Code::Unimplemented);
    // `ToOwned::to_owned` on the client is still the trait's.
    let _same: ConvClient<InProcessChannel> = std::borrow::ToOwned::to_owned(&client);
}

/// An enum value named `VALUES` is renamed, and the list of values keeps its name.
#[test]
fn an_enum_value_named_like_the_list_of_values_is_renamed() {
    use rust_rpc_testdata::ours::enums::Listing;
    assert_eq!(
        Listing::VALUES,
        [
            Listing::UNSPECIFIED,
            Listing::VALUES_2,
            Listing::NAMES,
            Listing::ALIASES
        ]
    );
    assert_eq!(Listing::VALUES_2.name(), Some("VALUES"));
    assert_eq!(Listing::from_name("VALUES"), Some(Listing::VALUES_2));
    // The trait's tables of names sit beside constants of the same names.
    assert_eq!(Listing::NAMES.name(), Some("NAMES"));
    assert_eq!(Listing::from_name("ALIASES"), Some(Listing::ALIASES));
    assert_eq!(<Listing as rust_rpc::Enumeration>::NAMES.len(), 4);
    assert!(<Listing as rust_rpc::Enumeration>::ALIASES.is_empty());
}

/// A value whose constant is its own name keeps it against a value declared before it whose
/// name strips to the same constant; that one keeps its full name.
#[test]
fn enum_values_named_as_written_keep_their_constants() {
    use rust_rpc_testdata::ours::field_names::Stripped;
    assert_eq!(Stripped::B.0, 1);
    assert_eq!(Stripped::STRIPPED_B, Stripped::B);
    assert_eq!(Stripped::B.name(), Some("STRIPPED_B"));
    assert_eq!(Stripped::from_name("B"), Some(Stripped::B));
    assert_eq!(Stripped::C.0, 2);
    assert_eq!(
        Stripped::VALUES,
        [Stripped::ZERO, Stripped::STRIPPED_B, Stripped::C]
    );
}

/// Aliases whose names fold onto another constant of their number share it, and are read by
/// their own names.
#[test]
fn aliases_that_fold_together_share_the_constant_their_name_folds_onto() {
    use rust_rpc_testdata::ours::field_names::Color;
    assert_eq!(Color::VALUES, [Color::COLOR_RED]);
    assert_eq!(Color::RED, Color::COLOR_RED);
    for name in ["COLOR_RED", "RED", "Red", "red", "COLOR_red"] {
        assert_eq!(Color::from_name(name), Some(Color::RED), "{name}");
    }
    assert_eq!(Color::RED.name(), Some("COLOR_RED"));
}

/// Fields whose Rust names meet get `_` appended, those the `.proto` spells as they come out
/// first (`self_` keeps `self_`; `self`, escaped to `self_`, becomes `self__`), then in
/// declaration order; getters keep off the methods messages have: `clone()` is still
/// `Clone::clone`, `encoded_len()` still `Message::encoded_len`.
#[test]
fn fields_and_getters_that_meet_are_renamed() {
    use rust_rpc::Message;
    use rust_rpc_testdata::ours::field_names::{Escaped, Fields, Getters};
    let fields = Fields {
        foo_bar: Some(1),
        foo_bar_: Some(2),
        ..Default::default()
    };
    assert_eq!((fields.foo_bar(), fields.foo_bar_()), (1, 2));
    let escaped = Escaped {
        self__: Some(3),
        self_: Some(4),
        ..Default::default()
    };
    assert_eq!((escaped.self__(), escaped.self_()), (3, 4));
    // Each field keeps its own number on the wire.
    assert_eq!(escaped.encode_to_vec(), [0x18, 3, 0x20, 4]);

    let getters = Getters {
        clone: Some(8),
        default: Some(7),
        encoded_len: Some(1),
        merge: Some("m".into()),
        clone_: Some(3),
        r#type: Some(4),
        unknown_fields_: Some(5),
        clear: Some(true),
        ..Default::default()
    };
    let copy: Getters = getters.clone();
    assert_eq!(copy, getters);
    assert_eq!(getters.encoded_len(), getters.encode_to_vec().len());
    assert_eq!(
        Getters::default(),
        Getters {
            ..Default::default()
        }
    );
    assert_eq!(
        (getters.clone_(), getters.default_(), getters.encoded_len_()),
        (8, 7, 1)
    );
    assert_eq!((getters.merge_(), getters.clone__()), ("m", 3));
    assert_eq!((getters.r#type(), getters.unknown_fields_()), (4, 5));
    assert_eq!(Getters::decode(&getters.encode_to_vec()).unwrap(), getters);
    // `clear()` is still `Message::clear`.
    assert!(getters.clear_());
    let mut cleared = getters.clone();
    cleared.clear();
    assert_eq!(cleared, Getters::default());
}

/// Oneof members whose variant names meet get `_` appended.
#[test]
fn oneof_variants_that_meet_are_renamed() {
    use rust_rpc::Message;
    use rust_rpc_testdata::ours::field_names::{variants, Variants};
    let message = Variants {
        choice: Some(variants::Choice::FooBar_(2)),
        ..Default::default()
    };
    assert_eq!(message.encode_to_vec(), [0x10, 2]);
}

/// A message whose nested types want the module of a package (`foo.Oof` beside `foo.oof`)
/// gets `oof_`; the package keeps `oof`, and both are usable side by side.
#[test]
fn a_message_module_beside_a_package_module_is_renamed() {
    use rust_rpc::Message;
    use rust_rpc_testdata::ours::module_names::foo::{oof, oof_, Oof};
    let message = Oof {
        inner: Some(oof_::Inner {
            x: 1,
            ..Default::default()
        }),
        thing: Some(oof::Thing {
            y: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(Oof::decode(&message.encode_to_vec()).unwrap(), message);
}

/// Oneof enums that meet nested types or each other get `Oneof`, then `_`.
#[test]
fn oneof_enums_that_meet_are_renamed() {
    use rust_rpc::Message;
    use rust_rpc_testdata::ours::field_names::{choices, Choices};
    let message = Choices {
        foo_bar: Some(choices::FooBar::A(1)),
        foo_bar_: Some(choices::FooBarOneof::B(2)),
        kind: Some(choices::KindOneof_::C(3)),
        ..Default::default()
    };
    assert_eq!(message.encode_to_vec(), [0x08, 1, 0x10, 2, 0x18, 3]);
    assert_eq!(Choices::decode(&message.encode_to_vec()).unwrap(), message);
    let _nested = (choices::Kind::default(), choices::KindOneof::default());
}

/// Types whose Rust names meet (`Twin`, `twin`, `TWIN`) get `_` appended, names written as
/// they come out first (`Twin` for `Twin`, the module `twin` for `twin`), then in declaration
/// order; references follow the renames.
#[test]
fn types_and_modules_that_meet_are_renamed() {
    use rust_rpc::Message;
    use rust_rpc_testdata::ours::field_names::{twin, twin_, Twin, Twin_, Twin__};
    let first = Twin {
        inner: Some(twin_::Inner {
            a: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let second = Twin_ {
        inner: Some(twin::Inner {
            b: Some(2),
            ..Default::default()
        }),
        other: Some(first.clone()),
        ..Default::default()
    };
    assert_eq!(Twin_::decode(&second.encode_to_vec()).unwrap(), second);
    assert_eq!(Twin__::UNSPECIFIED.name(), Some("TWIN_UNSPECIFIED"));
}

/// Packages whose names differ only in case or underscores get modules and files of their own:
/// packages written as their modules are named keep them (`foo`, `foo_`), `Foo` takes the next
/// free name (`foo__`).
#[test]
fn packages_that_differ_in_case_get_their_own_modules() {
    use rust_rpc::Name;
    use rust_rpc_testdata::ours::package_case::{foo, foo_, foo__};
    assert_eq!(foo::A::FULL_NAME, "foo.A");
    assert_eq!(foo_::A::FULL_NAME, "foo_.A");
    assert_eq!(foo__::A::FULL_NAME, "Foo.A");
    let _ = (
        foo::A {
            y: 1,
            ..Default::default()
        },
        foo_::A {
            z: 2,
            ..Default::default()
        },
        foo__::A {
            x: 3,
            ..Default::default()
        },
    );
}
