//! Our gRPC client against peers that misbehave in the ways other implementations got wrong,
//! played by a raw HTTP/2 server: an HTTP error or a page where a response should be, a
//! stream that ends without `grpc-status`, a `grpc-message` that is not valid
//! percent-encoding, a message split across DATA frames, and refused streams, which are
//! retried as never processed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use rust_rpc::grpc::GrpcChannel;
use rust_rpc::{Code, Message, Status};
use rust_rpc_testdata::ours::services::{CalculatorClient, Number};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the raw server answers the `n`th request it gets (from 0) on a stream.
#[derive(Clone, Copy)]
enum Answer {
    /// An HTTP status and an HTML page.
    Page(u16),
    /// Status 200 with a content type that is not gRPC, and a body.
    NotGrpc,
    /// Headers, one message, then the end of the stream without trailers.
    NoTrailers,
    /// Headers, one message, then trailers without `grpc-status`.
    TrailersWithoutStatus,
    /// A trailers-only response with this status and a `grpc-message` as it is given.
    TrailersOnly(u32, &'static str),
    /// A good response whose message arrives a byte at a time, prefix included.
    Split(i64),
    /// RST_STREAM with REFUSED_STREAM.
    Refuse,
}

/// A raw HTTP/2 server on loopback answering every stream by `answers` (the last one repeats);
/// counts the streams it saw.
async fn raw_server(answers: Vec<Answer>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let answers = answers.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let answer = answers[n.min(answers.len() - 1)];
                    tokio::spawn(async move { answer_with(answer, &mut respond).await });
                }
            });
        }
    });
    (addr, seen)
}

fn response(status: u16, content_type: &str) -> http::Response<()> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(())
        .unwrap()
}

fn prefixed(message: &[u8]) -> Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

async fn answer_with(answer: Answer, respond: &mut h2::server::SendResponse<Bytes>) {
    let body = prefixed(&number(7).encode_to_vec());
    match answer {
        Answer::Page(status) => {
            let mut stream = respond
                .send_response(response(status, "text/html"), false)
                .unwrap();
            let _ = stream.send_data(Bytes::from_static(b"<html>busy</html>"), true);
        }
        Answer::NotGrpc => {
            let mut stream = respond
                .send_response(response(200, "text/html"), false)
                .unwrap();
            let _ = stream.send_data(body, true);
        }
        Answer::NoTrailers => {
            let mut stream = respond
                .send_response(response(200, "application/grpc"), false)
                .unwrap();
            let _ = stream.send_data(body, true);
        }
        Answer::TrailersWithoutStatus => {
            let mut stream = respond
                .send_response(response(200, "application/grpc"), false)
                .unwrap();
            let _ = stream.send_data(body, false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-other", "1".parse().unwrap());
            let _ = stream.send_trailers(trailers);
        }
        Answer::TrailersOnly(code, message) => {
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", code.to_string())
                .header("grpc-message", message)
                .body(())
                .unwrap();
            let _ = respond.send_response(response, true);
        }
        Answer::Split(value) => {
            let mut stream = respond
                .send_response(response(200, "application/grpc"), false)
                .unwrap();
            for byte in prefixed(&number(value).encode_to_vec()) {
                let _ = stream.send_data(Bytes::copy_from_slice(&[byte]), false);
                tokio::task::yield_now().await;
            }
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let _ = stream.send_trailers(trailers);
        }
        Answer::Refuse => respond.send_reset(h2::Reason::REFUSED_STREAM),
    }
}

async fn call(answers: Vec<Answer>) -> (Result<Number, Status>, usize) {
    let (addr, seen) = raw_server(answers).await;
    let client = CalculatorClient::new(GrpcChannel::connect(addr).await.unwrap());
    let result = client.double(number(1)).await;
    (result, seen.load(Ordering::SeqCst))
}

#[tokio::test]
async fn responses_that_are_not_grpc_map_by_the_status_table_and_are_never_read() {
    bounded(async {
        for (status, code) in [
            (503, Code::Unavailable),
            (404, Code::Unimplemented),
            (401, Code::Unauthenticated),
            (500, Code::Unknown),
        ] {
            let err = call(vec![Answer::Page(status)]).await.0.unwrap_err();
            assert_eq!(err.code(), code, "HTTP {status}: {err}");
            assert!(err.message().contains(&status.to_string()), "{err}");
        }
        let err = call(vec![Answer::NotGrpc]).await.0.unwrap_err();
        assert_eq!(err.code(), Code::Unknown, "{err}");
        assert!(err.message().contains("text/html"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_stream_without_grpc_status_is_never_ok() {
    bounded(async {
        for answer in [Answer::NoTrailers, Answer::TrailersWithoutStatus] {
            let err = call(vec![answer]).await.0.unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn grpc_message_is_decoded_leniently_and_the_status_kept() {
    bounded(async {
        let err = call(vec![Answer::TrailersOnly(5, "not%20found%zz%E2%98")])
            .await
            .0
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert!(err.message().starts_with("not found%zz"), "{err}");
        let err = call(vec![Answer::TrailersOnly(99, "odd")])
            .await
            .0
            .unwrap_err();
        assert_eq!(err.code(), Code::Unknown);
    })
    .await;
}

#[tokio::test]
async fn a_message_split_byte_by_byte_arrives_whole() {
    bounded(async {
        let (result, _) = call(vec![Answer::Split(12_345)]).await;
        assert_eq!(result.unwrap().value, 12_345);
    })
    .await;
}

#[tokio::test]
async fn refused_streams_are_retried_as_never_processed() {
    bounded(async {
        let (result, seen) = call(vec![Answer::Refuse, Answer::Refuse, Answer::Split(8)]).await;
        assert_eq!(result.unwrap().value, 8);
        assert_eq!(seen, 3);
    })
    .await;
}

/// A client-streaming call refused before it sent a request goes again, and its requests go
/// to the stream that was accepted.
#[tokio::test]
async fn refused_request_streams_are_retried_before_their_first_request() {
    bounded(async {
        let (addr, seen) = raw_server(vec![Answer::Refuse, Answer::Refuse, Answer::Split(9)]).await;
        let client = CalculatorClient::new(GrpcChannel::connect(addr).await.unwrap());
        let (requests, source) = rust_rpc::stream::channel();
        let call = client.sum(source);
        let send = async {
            // Requests only once the third stream, the accepted one, is open.
            wait_for(|| seen.load(Ordering::SeqCst) == 3).await;
            requests.send(number(1)).await.unwrap();
            drop(requests);
        };
        let (result, ()) = tokio::join!(call, send);
        assert_eq!(result.unwrap().value, 9);
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    })
    .await;
}

/// A gRPC client at a server of another protocol (rust-rpc's TCP transport, a TLS server)
/// fails to connect with an error that says so, instead of connecting and failing every call.
#[tokio::test]
async fn a_server_that_is_not_http2_is_named_at_connect() {
    bounded(async {
        let server = start(Arc::default()).await;
        let err = GrpcChannel::connect(server.local_addr()).await.unwrap_err();
        // The TCP server answers our preface with its own: the error names it.
        assert!(
            err.to_string().contains("a rust-rpc TCP server answered"),
            "{err}"
        );
        // The same through a call on a lazy channel.
        let client =
            CalculatorClient::new(GrpcChannel::builder(server.local_addr()).connect_lazy());
        let status = client.double(number(1)).await.unwrap_err();
        assert_eq!(status.code(), rust_rpc::Code::Unavailable);
        assert!(
            status.message().contains("a rust-rpc TCP server answered"),
            "{status}"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

/// An HTTP/1 server and a TLS server, which answer an HTTP/2 preface with a status line and
/// an alert, are named by what they sent.
#[tokio::test]
async fn http1_and_tls_servers_are_named_by_their_answer() {
    bounded(async {
        for (answer, named) in [
            (
                &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
                "an HTTP/1 server answered",
            ),
            (
                &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46][..],
                "a TLS server answered",
            ),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut preface = [0; 24];
                stream.read_exact(&mut preface).await.unwrap();
                stream.write_all(answer).await.unwrap();
                stream.shutdown().await.unwrap();
            });
            let err = GrpcChannel::connect(addr).await.unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
            peer.await.unwrap();
        }
    })
    .await;
}
