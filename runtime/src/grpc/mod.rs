//! gRPC over HTTP/2: the same generated services on the standard wire, so that rust-rpc
//! clients and servers talk to every other gRPC implementation.
//!
//! The protocol followed is the gRPC project's `doc/PROTOCOL-HTTP2.md`: `POST
//! /package.Service/Method` with `content-type: application/grpc` and `te: trailers`; every
//! message behind a 5-byte prefix (a compressed flag and a big-endian length); the status in
//! the trailers as `grpc-status` and a percent-encoded `grpc-message`, or in the headers alone
//! (a trailers-only response) when a call fails before any message; deadlines as
//! `grpc-timeout`. HTTP/2 itself is the `h2` crate's; flow control is left to it, so a slow
//! stream holds up only itself.
//!
//! [`GrpcChannel`] is a client [`RpcChannel`](crate::RpcChannel); [`Server`] hosts the same
//! `...Server` adapters as the TCP transport, through the same call core.
//!
//! TLS (ALPN `h2`, mutual TLS as an option) comes with the `tls` feature:
//! `ServerBuilder::tls` and `GrpcChannelBuilder::tls`, configured by [`crate::tls`].
//!
//! Compression: both sides read `gzip` (decompressed output bounded by the message limit) and
//! offer it in `grpc-accept-encoding`; `send_compressed` on the channel or the server
//! compresses what that side sends. An encoding a peer cannot read is refused as the protocol
//! says (`UNIMPLEMENTED` on a server, with the encodings it accepts). Each message carries its
//! own compressed flag: a call turns compression off or on for what it sends with
//! `RpcController::set_message_compression`, a stream message by message with
//! `StreamSender::set_compression`, and the receiver reads the flag with
//! `RpcController::received_compressed` or `Streaming::last_message_compressed`.
//!
//! Keepalive: with [`Limits::keepalive`] set, a side sends HTTP/2 PING at that interval and
//! closes the connection when no answer comes within the timeout, so calls on a connection
//! whose peer vanished (a crashed host, a dropped route) fail with `UNAVAILABLE` instead of
//! waiting for their deadlines. Clients ping only while calls are open, as gRPC's do by
//! default; servers ping always. Off by default on both sides.
//!
//! Calls with one request that a server refuses unread (`REFUSED_STREAM`, or a stream above a
//! graceful GOAWAY's last stream id) are sent again, up to 5 attempts in all.

mod client;
pub mod health;
mod server;
mod wire;

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use crate::{Code, Status};

pub use crate::net::IntoTarget;
pub use crate::net::ServerHandle;
pub use client::{GrpcChannel, GrpcChannelBuilder};
pub use server::{Server, ServerBuilder};
pub use wire::Encoding;
#[doc(hidden)]
pub use wire::{check_deframer, decode_timeout, encode_timeout, percent_decode, percent_encode};

/// Bounds that protect either side of a connection from its peer.
///
/// Memory per connection is bounded in bytes: HTTP/2 buffers at most
/// `connection_window` bytes that nobody has read, and each stream holds at most
/// `window` bytes of decoded messages plus one message being assembled.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message this side accepts, in bytes (default 4 MiB, gRPC's). A larger one fails
    /// its call with `RESOURCE_EXHAUSTED`, checked from the message's prefix before anything
    /// is allocated.
    pub max_receive_message_size: usize,
    /// Largest message this side sends, in bytes (default 2 GiB - 1, gRPC's). A larger one
    /// fails its call with `RESOURCE_EXHAUSTED` and is not sent.
    pub max_send_message_size: usize,
    /// Most streams the peer may open at once on a connection this side serves (default
    /// 1024), announced in HTTP/2's SETTINGS.
    pub max_concurrent_streams: u32,
    /// HTTP/2 flow-control window per stream, in bytes (default 1 MiB).
    pub stream_window: u32,
    /// HTTP/2 flow-control window per connection, in bytes (default 16 MiB).
    pub connection_window: u32,
    /// Largest block of headers or trailers this side accepts, in bytes (default 16 KiB).
    pub max_header_list_size: u32,
    /// Bytes of decoded messages buffered per stream before reading from HTTP/2 pauses
    /// (default 64 KiB).
    pub window: usize,
    /// How long a new connection may take to exchange HTTP/2 prefaces and SETTINGS (default
    /// 10 s).
    pub handshake_timeout: Duration,
    /// How often to send HTTP/2 PING to check that the peer is still there (default: never).
    /// gRPC servers refuse clients that ping more often than they allow (5 minutes by
    /// default in gRPC's C core and grpc-go) with GOAWAY `ENHANCE_YOUR_CALM`, so set a client's
    /// interval to what its servers permit.
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for the answer to a keepalive PING before closing the connection
    /// (default 20 s, gRPC's).
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_receive_message_size: 4 * 1024 * 1024,
            max_send_message_size: i32::MAX as usize,
            max_concurrent_streams: 1024,
            stream_window: 1024 * 1024,
            connection_window: 16 * 1024 * 1024,
            max_header_list_size: 16 * 1024,
            window: crate::call::DEFAULT_WINDOW,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl Limits {
    /// The defaults with `bytes` as the largest message received.
    pub fn with_max_receive_message_size(mut self, bytes: usize) -> Self {
        self.max_receive_message_size = bytes;
        self
    }

    /// These limits with keepalive PINGs every `interval`, answered within `timeout`.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = Some(interval);
        self.keepalive_timeout = timeout;
        self
    }
}

/// Pings the peer every `interval` while `wanted()` says so, and returns once a ping goes
/// unanswered for `timeout` or the connection fails: the caller then closes the connection.
/// Without an interval it never returns. The connection must be polled meanwhile, which sends
/// the pings and reads their answers.
pub(crate) async fn keep_alive(
    pings: Option<h2::PingPong>,
    limits: &Limits,
    wanted: impl Fn() -> bool,
) {
    let (Some(mut pings), Some(interval)) = (pings, limits.keepalive_interval) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        if !wanted() {
            continue;
        }
        let answer = tokio::time::timeout(limits.keepalive_timeout, pings.ping(h2::Ping::opaque()));
        if !matches!(answer.await, Ok(Ok(_))) {
            return;
        }
    }
}

/// Moves the messages of one HTTP/2 stream into `inbound` until the stream ends (`Ok`) or
/// fails.
///
/// DATA is taken out of HTTP/2 as soon as it arrives, so HTTP/2 never holds many small frames
/// (which it would count against the peer as abuse and answer with GOAWAY); the pace is set by
/// credit instead. The bytes of messages waiting for room in `inbound` are not given back to
/// the peer, so it can send at most a window ahead of the reader; the start of a message not
/// yet complete is, so a message larger than the window still arrives.
pub(crate) async fn pump_messages(
    body: &mut h2::RecvStream,
    inbound: &crate::call::Inbound,
    deframer: &mut wire::Deframer,
) -> Result<(), Status> {
    // Bytes received and not yet given back.
    let mut outstanding = 0;
    let mut ended = false;
    loop {
        while inbound.has_room() {
            match deframer.next()? {
                // Room was checked; after the end or without a consumer it is dropped.
                Some(message) => inbound.push_with(message, Some(deframer.last_compressed()))?,
                None => break,
            }
        }
        let held = if deframer.head_complete() {
            deframer.remaining()
        } else {
            0
        };
        if outstanding > held {
            let _ = body.flow_control().release_capacity(outstanding - held);
            outstanding = held;
        }
        if ended {
            if !deframer.head_complete() {
                return match deframer.remaining() {
                    0 => Ok(()),
                    _ => Err(Status::internal("the stream ended inside a message")),
                };
            }
            inbound.room().await;
            continue;
        }
        tokio::select! {
            data = body.data() => match data {
                Some(Ok(data)) => {
                    outstanding += data.len();
                    deframer.push(data);
                }
                Some(Err(e)) => return Err(status_from_h2(&e)),
                None => ended = true,
            },
            () = inbound.room(), if deframer.head_complete() => {}
        }
    }
}

/// Waits until `stream` may take more data: HTTP/2 has given it some send capacity (so what
/// HTTP/2 buffers for a stream stays near one message). Fails once the stream is reset or
/// closed.
pub(crate) fn poll_send_ready(
    stream: &mut h2::SendStream<Bytes>,
    len: usize,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Status>> {
    loop {
        if stream.capacity() > 0 {
            return Poll::Ready(Ok(()));
        }
        stream.reserve_capacity(len.max(1));
        match stream.poll_capacity(cx) {
            Poll::Ready(Some(Ok(0))) => continue,
            Poll::Ready(Some(Ok(_))) => return Poll::Ready(Ok(())),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(status_from_h2(&e))),
            Poll::Ready(None) => {
                return Poll::Ready(Err(Status::cancelled("the stream is closed")));
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The status for an HTTP/2 error, as gRPC maps RST_STREAM codes
/// (`doc/PROTOCOL-HTTP2.md`, "Errors"); a connection that failed is `UNAVAILABLE`.
pub(crate) fn status_from_h2(error: &h2::Error) -> Status {
    if let Some(reason) = error.reason() {
        let code = match reason {
            h2::Reason::CANCEL => Code::Cancelled,
            h2::Reason::REFUSED_STREAM => Code::Unavailable,
            h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
            h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
            _ if error.is_go_away() => Code::Unavailable,
            _ => Code::Internal,
        };
        return Status::new(code, format!("HTTP/2 stream error: {reason}"));
    }
    Status::unavailable(format!("the connection failed: {error}"))
}
