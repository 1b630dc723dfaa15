//! A `.proto` service in the shape of protobuf's C++ generic services, made async: a trait
//! with one method per rpc (defaults answer `unimplemented`), a stub that implements the trait
//! through an `RpcChannel`, a server adapter that implements the type-erased `Service` by
//! dispatching on the method index, and static descriptors.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::{allow_deprecated, deprecated_attr, doc_attrs, ident, path};
use crate::ir::{Method, Service};

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
    let service_trait = service_trait(service);
    let server = if options.build_server {
        server(service, &allow)
    } else {
        TokenStream::new()
    };
    let stub = if options.build_client {
        stub(service, &allow)
    } else {
        TokenStream::new()
    };
    quote! {
        #descriptor
        #service_trait
        #stub
        #server
    }
}

fn descriptor(service: &Service) -> TokenStream {
    let name = format_ident!("{}", service.descriptor_name);
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

fn service_trait(service: &Service) -> TokenStream {
    let name = ident(&service.rust_name);
    let docs = doc_attrs(
        &service.comments,
        &[format!(
            "Service `{}`. Implement it to serve the service (wrap the implementation in [`{}Server`]); [`{}Stub`] implements it by calling a remote one.",
            service.full_name, service.rust_name, service.rust_name
        )],
    );
    let deprecated = deprecated_attr(service.deprecated);
    let methods = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let Shape { params, output, names } = shape(m);
        let docs = doc_attrs(&m.comments, &[]);
        let deprecated = deprecated_attr(m.deprecated);
        let unimplemented = format!("Method {}() not implemented", m.proto_name);
        quote! {
            #docs
            #deprecated
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
        pub trait #name: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

fn stub(service: &Service, allow: &TokenStream) -> TokenStream {
    let trait_name = ident(&service.rust_name);
    let name = format_ident!("{}Stub", service.rust_name.trim_start_matches("r#"));
    let descriptor = format_ident!("{}", service.descriptor_name);
    let doc = format!(
        " Calls `{}` through an [`RpcChannel`](::rust_rpc::RpcChannel). It implements [`{}`], so code written against the trait runs against a local implementation or a remote one alike.",
        service.full_name, service.rust_name
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
        pub struct #name<C> {
            channel: C,
        }

        impl<C: ::rust_rpc::RpcChannel> #name<C> {
            /// A stub that sends its calls through `channel`.
            pub fn new(channel: C) -> Self {
                #name { channel }
            }

            /// The channel calls go through.
            pub fn channel(&self) -> &C {
                &self.channel
            }
        }

        #allow
        impl<C: ::rust_rpc::RpcChannel> #trait_name for #name<C> {
            #(#methods)*
        }
    }
}

fn server(service: &Service, allow: &TokenStream) -> TokenStream {
    let trait_name = ident(&service.rust_name);
    let name = format_ident!("{}Server", service.rust_name.trim_start_matches("r#"));
    let descriptor = format_ident!("{}", service.descriptor_name);
    let full_name = &service.full_name;
    let doc = format!(
        " Serves an implementation of [`{}`]: the type-erased [`Service`](::rust_rpc::Service) that a server hosts, dispatching each call on its method index.",
        service.rust_name
    );
    let any_streaming_response = service.methods.iter().any(|m| m.server_streaming);
    let responses_param = if any_streaming_response {
        quote!(responses)
    } else {
        quote!(_responses)
    };
    let arms = service.methods.iter().map(|m| {
        let method = ident(&m.rust_name);
        let index = Literal::usize_unsuffixed(m.index);
        let input = path(&m.input.rust_path);
        let output = path(&m.output.rust_path);
        let body = match (m.client_streaming, m.server_streaming) {
            (false, false) => quote! {
                let request = _rpc::unary_request::<#input>(request)?;
                let response = self.inner.#method(ctrl, request).await?;
                _rpc::unary_response(ctrl, &response)
            },
            (false, true) => quote! {
                let request = _rpc::unary_request::<#input>(request)?;
                let responses = _rpc::response_stream::<#output>(responses)?;
                self.inner.#method(ctrl, request, responses).await?;
                _rpc::stream_end(ctrl)
            },
            (true, false) => quote! {
                let requests = _rpc::request_stream::<#input>(request)?;
                let response = self.inner.#method(ctrl, requests).await?;
                _rpc::unary_response(ctrl, &response)
            },
            (true, true) => quote! {
                let requests = _rpc::request_stream::<#input>(request)?;
                let responses = _rpc::response_stream::<#output>(responses)?;
                self.inner.#method(ctrl, requests, responses).await?;
                _rpc::stream_end(ctrl)
            },
        };
        quote! {
            #index => ::std::boxed::Box::pin(async move { #body }),
        }
    });
    let unknown = quote! {
        ::std::boxed::Box::pin(async move {
            let _ = (ctrl, request);
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
        pub struct #name<T> {
            inner: T,
        }

        #allow
        impl<T: #trait_name> #name<T> {
            /// Wraps an implementation so a server can host it.
            pub fn new(inner: T) -> Self {
                #name { inner }
            }

            /// The implementation.
            pub fn get_ref(&self) -> &T {
                &self.inner
            }

            /// Unwraps the implementation.
            pub fn into_inner(self) -> T {
                self.inner
            }
        }

        #allow
        impl<T: #trait_name> ::rust_rpc::Service for #name<T> {
            fn descriptor(&self) -> &'static ::rust_rpc::ServiceDescriptor {
                &#descriptor
            }

            fn call_method<'a>(
                &'a self,
                method_index: usize,
                ctrl: &'a mut ::rust_rpc::RpcController,
                request: ::rust_rpc::RequestBody,
                #responses_param: ::core::option::Option<::rust_rpc::stream::ByteSink>,
            ) -> ::rust_rpc::service::BoxFuture<'a, ::core::result::Result<::core::option::Option<::std::vec::Vec<u8>>, ::rust_rpc::Status>> {
                #dispatch
            }
        }
    }
}
