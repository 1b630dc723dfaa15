//! Interceptors: hooks around every call, on the client (a channel that wraps a channel) and
//! on the server ([`ServerInterceptor`], added to a server's builder).

use std::sync::Arc;

use crate::call::{ClientCall, OutgoingCall};
use crate::service::{BoxFuture, MethodDescriptor, RpcChannel};
use crate::{Metadata, Status};

pub use crate::call::ServerInterceptor;

/// Hooks around every call a client makes through an [`Intercepted`] channel.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Runs before the call starts, with its request metadata, which it may change (add a
    /// token, say). An error fails the call with that status before anything is sent.
    fn on_call(
        &self,
        method: &'static MethodDescriptor,
        metadata: &mut Metadata,
    ) -> Result<(), Status> {
        let _ = (method, metadata);
        Ok(())
    }

    /// Runs once the call has ended, with its status (`CANCELLED` for a call whose caller
    /// stopped reading).
    fn on_end(&self, method: &'static MethodDescriptor, status: &Result<(), Status>) {
        let _ = (method, status);
    }
}

/// A channel that runs interceptors around every call made through it.
#[derive(Clone)]
pub struct Intercepted<C> {
    channel: C,
    interceptors: Vec<Arc<dyn ClientInterceptor>>,
}

impl<C> std::fmt::Debug for Intercepted<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercepted")
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl<C: RpcChannel> Intercepted<C> {
    /// `channel` with no interceptors yet.
    pub fn new(channel: C) -> Self {
        Intercepted {
            channel,
            interceptors: Vec::new(),
        }
    }

    /// Adds an interceptor; they run in the order added.
    pub fn with(mut self, interceptor: impl ClientInterceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// The wrapped channel.
    pub fn inner(&self) -> &C {
        &self.channel
    }
}

impl<C: RpcChannel> RpcChannel for Intercepted<C> {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        mut call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        Box::pin(async move {
            let refused = self
                .interceptors
                .iter()
                .try_for_each(|i| i.on_call(method, &mut call.metadata));
            let started = match refused {
                Ok(()) => self.channel.start_call(method, call).await,
                Err(status) => Err(status),
            };
            match &started {
                Ok(call) => {
                    for interceptor in &self.interceptors {
                        let interceptor = interceptor.clone();
                        call.responses
                            .on_end(move |status| interceptor.on_end(method, status));
                    }
                }
                Err(status) => {
                    let status = Err(status.clone());
                    for interceptor in &self.interceptors {
                        interceptor.on_end(method, &status);
                    }
                }
            }
            started
        })
    }
}
