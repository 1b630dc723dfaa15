//! A `.proto` service in the shape of protobuf's C++ generic services, made async: a trait
//! with one method per rpc (defaults answer `unimplemented`), a stub that implements the trait
//! through an `RpcChannel`, a server adapter that implements the type-erased `Service` by
//! dispatching on the method index, and static descriptors.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{allow_deprecated, deprecated_attr, doc_attrs, ident, path};
use crate::ir::{Method, Service, ServiceItems};

/// Tokens for what a method's signature and bodies need, chosen by its streaming kind.
struct Shape {
    /// Parameters after `ctrl`.
    params: TokenStream,
    /// The `Ok` type of the returned future.
    output: TokenStream,
    /// Names of the parameters, to mark them used in the default body.
    names: TokenStream,
}

fn shape(method: &Method) -> Shape {
    let input = path(&method.input.rust_path);
    let output = path(&method.output.rust_path);
    match (method.client_streaming, method.server_streaming) {
        (false, false) => Shape {
            params: quote!(request: #input),
            output: quote!(#output),
            names: quote!(request),
        },
        (false, true) => Shape {
            params: quote!(request: #input, responses: ::rust_rpc::StreamSender<#output>),
            output: quote!(()),
            names: quote!(request, responses),
        },
        (true, false) => Shape {
            params: quote!(requests: ::rust_rpc::Streaming<#input>),
            output: quote!(#output),
            names: quote!(requests),
        },
        (true, true) => Shape {
            params: quote!(requests: ::rust_rpc::Streaming<#input>, responses: ::rust_rpc::StreamSender<#output>),
            output: quote!(()),
            names: quote!(requests, responses),
        },
    }
}

pub(super) fn service(service: &Service, options: super::EmitOptions) -> TokenStream {
    let touches_deprecated = service.deprecated
        || service
            .methods
            .iter()
            .any(|m| m.deprecated || m.input.deprecated || m.output.deprecated);
    let allow = allow_deprecated(touches_deprecated);
    let descriptor = descriptor(service);
    let service_trait = service_trait(service, options, &allow);
    let dyn_form = dyn_form(service, &allow);
    let server = if options.build_server {
        server(service, &allow)
    } else {
        TokenStream::new()
    };
    let (stub, client) = if options.build_client {
        (stub(service, &allow), client(service, &allow))
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    quote! {
        #descriptor
        #service_trait
        #dyn_form
        #client
        #stub
        #server
    }
}

/// What kind of call a method is, in words, for the docs.
fn kind_words(method: &Method) -> &'static str {
    match (method.client_streaming, method.server_streaming) {
        (false, false) => "Unary",
        (false, true) => "Server-streaming",
        (true, false) => "Client-streaming",
        (true, true) => "Bidirectional streaming",
    }
}

/// The line that documents a method without a comment of its own.
fn method_line(service: &Service, method: &Method) -> String {
    format!(
        "{} rpc `{}.{}`: takes `{}`, returns `{}`.",
        kind_words(method),
        service.full_name,
        method.proto_name,
        method.input.full_name,
        method.output.full_name
    )
}

/// The lints an rpc's method name may trip, which the user chose (see
/// [`super::method_name_allows`]).
fn self_convention_allow(method: &Method) -> TokenStream {
    super::method_name_allows(&method.rust_name)
}

/// The method's own comment, or a line naming it, its kind and its types.
fn method_docs(service: &Service, method: &Method) -> TokenStream {
    let mut extra = Vec::new();
    if crate::docs::lines(&method.comments).is_empty() {
        extra.push(method_line(service, method));
    }
    extra.extend(renamed_line(method));
    doc_attrs(&method.comments, &extra)
}

/// " Named `KvClient_` because `KvClient` is taken in its module." for an item that did not get
/// its own name; empty otherwise.
fn renamed_item(service: &Service, name: &str) -> String {
    service
        .items
        .renamed
        .iter()
        .find(|(final_name, _)| final_name == name)
        .map(|(final_name, wanted)| format!(" {}", super::renamed_type_line(final_name, wanted)))
        .unwrap_or_default()
}

/// Why a method is not named as its rpc, if it is not.
fn renamed_line(method: &Method) -> Option<String> {
    let wanted = method.renamed_from.as_ref()?;
    Some(format!(
        "Named `{}` because `{}` is a method the generated types have, or another rpc's name.",
        method.rust_name.unraw(),
        wanted.unraw()
    ))
}

fn descriptor(service: &Service) -> TokenStream {
    let name = ident(&service.descriptor_name);
    let proto_name = &service.proto_name;
    let full_name = &service.full_name;
    let methods = service.methods.iter().map(|m| {
        let method_name = &m.proto_name;
        let method_full = format!("{}.{}", service.full_name, m.proto_name);
        let index = Literal::usize_unsuffixed(m.index);
        let input = &m.input.full_name;
        let output = &m.output.full_name;
        let (cs, ss) = (m.client_streaming, m.server_streaming);
        quote! {
            ::rust_rpc::MethodDescriptor {
                name: #method_name,
                full_name: #method_full,
                service: #full_name,
                index: #index,
                input_type: #input,
                output_type: #output,
                client_streaming: #cs,
                server_streaming: #ss,
            }
        }
    });
    let doc = format!(" Descriptor of service `{full_name}` and its methods.");
    quote! {
        #[doc = #doc]
        pub static #name: ::rust_rpc::ServiceDescriptor = ::rust_rpc::ServiceDescriptor {
            name: #proto_name,
            full_name: #full_name,
            methods: &[#(#methods),*],
        };
    }
}

fn service_trait(
    service: &Service,
    options: super::EmitOptions,
    allow: &TokenStream,
) -> TokenStream {
    let name = ident(&service.rust_name);
    let ServiceItems {
        stub,
        client,
        server,
        ..
    } = &service.items;
    // Links only to what is generated (`--no-server`, `--no-client` leave some out).
    let serve = if options.build_server {
        format!("Implement it to serve the service (wrap the implementation in [`{server}`](struct@{server})).")
    } else {
        "Implement it to serve the service.".to_owned()
    };
    let call = if options.build_client {
        format!(" [`{stub}`](struct@{stub}) implements it by calling a remote one, and [`{client}`](struct@{client}) calls a remote one directly.")
    } else {
        String::new()
    };
    let mut extra = vec![format!(
        "Service `{}`. {serve}{call} A handler fails a call by returning `Err(status)`.",
        service.full_name
    )];
    if let Some(wanted) = &service.renamed_from {
        extra.push(super::renamed_type_line(&service.rust_name, wanted));
    }
    let docs = doc_attrs(&service.comments, &extra);
    let deprecated = deprecated_attr(service.deprecated);
    let methods = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let Shape { params, output, names } = shape(m);
        let docs = method_docs(service, m);
        let deprecated = deprecated_attr(m.deprecated);
        let convention = self_convention_allow(m);
        let unimplemented = format!("Method {}() not implemented", m.proto_name);
        quote! {
            #docs
            #deprecated
            #convention
            fn #method(
                &self,
                ctrl: &mut ::rust_rpc::RpcController,
                #params,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<#output, ::rust_rpc::Status>> + ::core::marker::Send {
                async move {
                    let _ = (ctrl, #names);
                    ::core::result::Result::Err(::rust_rpc::Status::unimplemented(#unimplemented))
                }
            }
        }
    });
    quote! {
        #docs
        #deprecated
        #allow
        pub trait #name: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

/// The trait behind one type chosen at run time: `...Dyn` holds any implementation (a local
/// one, a stub) behind an `Arc`, and implements the trait. The object-safe trait it uses has
/// its own method names, so importing both traits never makes a call ambiguous.
fn dyn_form(service: &Service, allow: &TokenStream) -> TokenStream {
    let tp = ident(&service.items.impl_param);
    let trait_name = ident(&service.rust_name);
    let bare = service.rust_name.unraw();
    let dyn_name = &service.items.dyn_form;
    let name = ident(dyn_name);
    let erased = ident(&service.items.erased);
    let doc = format!(
        " Any implementation of [`{bare}`](trait@{bare}) (a local one, a stub) behind one type chosen at run time. It implements `{bare}` itself, so it can be served and called like any other. Cloning shares the implementation.{}",
        renamed_item(service, dyn_name)
    );
    let erased_doc = format!(
        " The object-safe form of [`{bare}`](trait@{bare}) that [`{dyn_name}`](struct@{dyn_name}) holds; every implementation of `{bare}` has it.{}",
        renamed_item(service, &service.items.erased)
    );
    let mut decls = Vec::new();
    let mut boxed = Vec::new();
    let mut forwards = Vec::new();
    for m in &service.methods {
        let method = ident(&m.rust_name);
        let erased_method = ident(&m.erased_name);
        let Shape {
            params,
            output,
            names,
        } = shape(m);
        let result = quote!(::core::result::Result<#output, ::rust_rpc::Status>);
        decls.push(quote! {
            #[doc(hidden)]
            fn #erased_method<'a>(
                &'a self,
                ctrl: &'a mut ::rust_rpc::RpcController,
                #params,
            ) -> ::rust_rpc::service::BoxFuture<'a, #result>;
        });
        boxed.push(quote! {
            fn #erased_method<'a>(
                &'a self,
                ctrl: &'a mut ::rust_rpc::RpcController,
                #params,
            ) -> ::rust_rpc::service::BoxFuture<'a, #result> {
                ::std::boxed::Box::pin(<#tp as #trait_name>::#method(self, ctrl, #names))
            }
        });
        forwards.push(quote! {
            #[inline]
            async fn #method(
                &self,
                ctrl: &mut ::rust_rpc::RpcController,
                #params,
            ) -> #result {
                self.0.#erased_method(ctrl, #names).await
            }
        });
    }
    // Without methods nothing reads the implementation back.
    let unread = if service.methods.is_empty() {
        quote!(#[allow(dead_code)])
    } else {
        TokenStream::new()
    };
    quote! {
        #[doc = #doc]
        #[derive(Clone)]
        #unread
        pub struct #name(::std::sync::Arc<dyn #erased>);

        #allow
        impl #name {
            /// Holds `implementation`.
            pub fn new(implementation: impl #trait_name) -> Self {
                #name(::std::sync::Arc::new(implementation))
            }
        }

        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#name))
            }
        }

        #allow
        impl #trait_name for #name {
            #(#forwards)*
        }

        #[doc = #erased_doc]
        #[doc(hidden)]
        #allow
        pub trait #erased: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#decls)*
        }

        #allow
        impl<#tp: #trait_name> #erased for #tp {
            #(#boxed)*
        }
    }
}

fn stub(service: &Service, allow: &TokenStream) -> TokenStream {
    let cp = ident(&service.items.channel_param);
    let trait_name = ident(&service.rust_name);
    let bare = service.rust_name.unraw();
    let client = &service.items.client;
    let name = ident(&service.items.stub);
    let descriptor = ident(&service.descriptor_name);
    let doc = format!(
        " Calls `{}` through an [`RpcChannel`](::rust_rpc::RpcChannel) in the form of the trait: it implements [`{bare}`](trait@{bare}), so code written against the trait runs against a local implementation or a remote one alike. [`{client}`](struct@{client}) is the direct form.{}",
        service.full_name,
        renamed_item(service, &service.items.stub)
    );
    let methods = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let Shape { params, output, .. } = shape(m);
        let index = Literal::usize_unsuffixed(m.index);
        let call = match (m.client_streaming, m.server_streaming) {
            (false, false) => quote!(call_unary(&self.channel, &#descriptor.methods[#index], ctrl, request)),
            (false, true) => quote!(call_server_streaming(&self.channel, &#descriptor.methods[#index], ctrl, request, responses)),
            (true, false) => quote!(call_client_streaming(&self.channel, &#descriptor.methods[#index], ctrl, requests)),
            (true, true) => quote!(call_bidi_streaming(&self.channel, &#descriptor.methods[#index], ctrl, requests, responses)),
        };
        quote! {
            fn #method(
                &self,
                ctrl: &mut ::rust_rpc::RpcController,
                #params,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<#output, ::rust_rpc::Status>> + ::core::marker::Send {
                ::rust_rpc::service::codegen::#call
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #name<#cp> {
            channel: #cp,
        }

        impl<#cp: ::rust_rpc::RpcChannel> #name<#cp> {
            /// A stub that sends its calls through `channel`.
            pub fn new(channel: #cp) -> Self {
                #name { channel }
            }

            /// The channel calls go through.
            pub fn channel(&self) -> &#cp {
                &self.channel
            }
        }

        #allow
        impl<#cp: ::rust_rpc::RpcChannel> #trait_name for #name<#cp> {
            #(#methods)*
        }
    }
}

/// The direct client: one method per rpc that returns a call to set options on and await.
fn client(service: &Service, allow: &TokenStream) -> TokenStream {
    let cp = ident(&service.items.channel_param);
    let name = ident(&service.items.client);
    let descriptor = ident(&service.descriptor_name);
    let doc = format!(
        " Calls `{}` through an [`RpcChannel`](::rust_rpc::RpcChannel): each method returns a [`Call`](::rust_rpc::client::Call) to `.await`, after setting a timeout, metadata or a controller on it if wanted. Cloning is cheap.{}",
        service.full_name,
        renamed_item(service, &service.items.client)
    );
    let methods = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let input = path(&m.input.rust_path);
        let output = path(&m.output.rust_path);
        let index = Literal::usize_unsuffixed(m.index);
        let deprecated = deprecated_attr(m.deprecated);
        let convention = self_convention_allow(m);
        let (params, kind, constructor, arg, what) = match (m.client_streaming, m.server_streaming) {
            (false, false) => (
                quote!(request: #input),
                quote!(Unary),
                quote!(unary),
                quote!(request),
                "`.await` gives the response.",
            ),
            (false, true) => (
                quote!(request: #input),
                quote!(ServerStreaming),
                quote!(server_streaming),
                quote!(request),
                "`.await` gives the response stream as soon as the call has started, which may be before the handler runs: `headers().await` on it waits for the server's response headers, sent when the handler first sends or calls `send_headers`. Read it with `message().await` until `None`.",
            ),
            (true, false) => (
                quote!(requests: impl ::rust_rpc::IntoRequests<#input>),
                quote!(ClientStreaming),
                quote!(client_streaming),
                quote!(requests),
                "Sends `requests` (a `Vec` or any iterator, `rust_rpc::stream::from_stream(stream)`, or the receiving end of `rust_rpc::stream::channel()`); `.await` gives the response.",
            ),
            (true, true) => (
                quote!(requests: impl ::rust_rpc::IntoRequests<#input>),
                quote!(BidiStreaming),
                quote!(bidi_streaming),
                quote!(requests),
                "Sends `requests` (as for a client-streaming call) while `.await` gives the response stream as soon as the call has started.",
            ),
        };
        let mut lines = crate::docs::lines(&m.comments);
        if lines.is_empty() {
            lines.push(method_line(service, m));
        }
        lines.push(String::new());
        lines.push(what.to_owned());
        if let Some(renamed) = renamed_line(m) {
            lines.push(String::new());
            lines.push(renamed);
        }
        let docs = lines.iter().map(|l| format!(" {l}"));
        quote! {
            #(#[doc = #docs])*
            #deprecated
            #convention
            pub fn #method(&self, #params) -> ::rust_rpc::client::Call<'_, ::rust_rpc::client::#kind<#input, #output>> {
                ::rust_rpc::client::Call::#constructor(&self.channel, &#descriptor.methods[#index], #arg)
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #name<#cp> {
            channel: #cp,
        }

        #allow
        impl<#cp: ::rust_rpc::RpcChannel> #name<#cp> {
            /// A client that sends its calls through `channel`.
            pub fn new(channel: #cp) -> Self {
                #name { channel }
            }

            /// The channel calls go through.
            pub fn channel(&self) -> &#cp {
                &self.channel
            }

            #(#methods)*
        }
    }
}

fn server(service: &Service, allow: &TokenStream) -> TokenStream {
    let tp = ident(&service.items.impl_param);
    let trait_name = ident(&service.rust_name);
    let name = ident(&service.items.server);
    let descriptor = ident(&service.descriptor_name);
    let full_name = &service.full_name;
    let doc = format!(
        " Serves an implementation of [`{0}`](trait@{0}): the type-erased [`Service`](::rust_rpc::Service) that a server hosts, dispatching each call on its method index.{1}",
        service.rust_name.unraw(),
        renamed_item(service, &service.items.server)
    );
    let arms = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let index = Literal::usize_unsuffixed(m.index);
        let input = path(&m.input.rust_path);
        let output = path(&m.output.rust_path);
        let body = match (m.client_streaming, m.server_streaming) {
            (false, false) => quote! {
                let request = _rpc::unary_request::<#input>(call).await?;
                let response = self.inner.#method(ctrl, request).await?;
                _rpc::unary_response(&response)
            },
            (false, true) => quote! {
                let (request, responses) = _rpc::request_and_responses::<#input, #output>(call).await?;
                self.inner.#method(ctrl, request, responses).await?;
                _rpc::stream_end()
            },
            (true, false) => quote! {
                let requests = _rpc::request_stream::<#input>(call);
                let response = self.inner.#method(ctrl, requests).await?;
                _rpc::unary_response(&response)
            },
            (true, true) => quote! {
                let (requests, responses) = _rpc::streams::<#input, #output>(call);
                self.inner.#method(ctrl, requests, responses).await?;
                _rpc::stream_end()
            },
        };
        quote! {
            #index => ::std::boxed::Box::pin(async move { #body }),
        }
    });
    let unknown = quote! {
        ::std::boxed::Box::pin(async move {
            let _ = (ctrl, call);
            _rpc::unknown_method(#full_name, method_index)
        })
    };
    let dispatch = if service.methods.is_empty() {
        quote! {
            use ::rust_rpc::service::codegen as _rpc;
            #unknown
        }
    } else {
        quote! {
            use ::rust_rpc::service::codegen as _rpc;
            match method_index {
                #(#arms)*
                _ => #unknown,
            }
        }
    };
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #name<#tp> {
            inner: #tp,
        }

        #allow
        impl<#tp: #trait_name> #name<#tp> {
            /// Wraps an implementation so a server can host it.
            pub fn new(inner: #tp) -> Self {
                #name { inner }
            }

            /// The implementation.
            pub fn get_ref(&self) -> &#tp {
                &self.inner
            }

            /// Unwraps the implementation.
            pub fn into_inner(self) -> #tp {
                self.inner
            }
        }

        #allow
        impl<#tp: #trait_name> ::rust_rpc::Service for #name<#tp> {
            fn descriptor(&self) -> &'static ::rust_rpc::ServiceDescriptor {
                &#descriptor
            }

            fn call_method<'a>(
                &'a self,
                method_index: usize,
                ctrl: &'a mut ::rust_rpc::RpcController,
                call: ::rust_rpc::ServerCall,
            ) -> ::rust_rpc::service::BoxFuture<'a, ::core::result::Result<::core::option::Option<::rust_rpc::bytes::Bytes>, ::rust_rpc::Status>> {
                #dispatch
            }
        }
    }
}
