//! Calls from plain threads, for programs without an async runtime of their own.
//!
//! A [`Runtime`] owns a small tokio runtime (one worker thread) on which channels keep their
//! connections, and [`Runtime::wait`] runs any call of a generated client to its end on the
//! calling thread. Any number of threads may wait on one runtime at once; their calls share
//! its connections. The generated code is the same as for async callers: there is no second,
//! blocking copy of it.
//!
//! ```no_run
//! # mod echo { pub struct EchoRequest { pub message: String }
//! #   pub struct EchoServiceClient<C>(C);
//! #   impl<C> EchoServiceClient<C> { pub fn new(c: C) -> Self { Self(c) }
//! #     pub async fn echo(&self, _: EchoRequest) -> Result<EchoRequest, rust_rpc::Status> { todo!() } } }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rust_rpc::blocking::Runtime;
//! use rust_rpc::tcp::TcpChannel;
//! # use echo::{EchoRequest, EchoServiceClient};
//!
//! let runtime = Runtime::new()?;
//! let channel = runtime.wait(TcpChannel::connect("127.0.0.1:50051"))?;
//! let client = EchoServiceClient::new(channel);
//! let reply = runtime.wait(client.echo(EchoRequest { message: "hi".into() }))?;
//! # Ok(()) }
//! ```
//!
//! A stream is read the same way, one `wait` per message:
//! `while let Some(event) = runtime.wait(events.message())? { .. }`.

use std::future::IntoFuture;
use std::sync::Arc;

/// A tokio runtime for calls made from threads that have none. Cloning is cheap and shares it;
/// it stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Runtime {
    inner: Arc<tokio::runtime::Runtime>,
}

impl Runtime {
    /// A runtime with one worker thread, which runs the channels' connections between and
    /// during calls. Fails if the operating system refuses the thread.
    pub fn new() -> std::io::Result<Runtime> {
        let inner = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rust-rpc-blocking")
            .enable_all()
            .build()?;
        Ok(Runtime {
            inner: Arc::new(inner),
        })
    }

    /// Runs `call` (a call of a generated client, a stream's `message()`, a channel's
    /// `connect`, any future) to its end on this thread and returns what it gives.
    ///
    /// # Panics
    /// When called from inside an async task (tokio does not let a runtime block a thread
    /// that drives another): there, `.await` the call instead.
    pub fn wait<F: IntoFuture>(&self, call: F) -> F::Output {
        self.inner.block_on(call.into_future())
    }

    /// The tokio handle, to spawn work of your own beside the calls.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.inner.handle()
    }
}
