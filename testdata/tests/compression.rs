//! gRPC compression, checked on the wire with a raw HTTP/2 client: a server asked to compress
//! does so (flag and `grpc-encoding`) only for clients that accept gzip, reads compressed
//! requests, and refuses an encoding it does not know with the ones it does; and our own
//! client and server agree with compression on in both directions.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use rust_rpc::grpc::{Encoding, GrpcChannel, Server};
use rust_rpc::{Code, Message};
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer, Number};

async fn compressing_server() -> rust_rpc::grpc::ServerHandle {
    Server::builder()
        .add_service(CalculatorServer::new(Calc::new(Arc::default())))
        .send_compressed(Encoding::Gzip)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// One message behind its 5-byte prefix.
fn prefixed(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.into()
}

/// What a raw call got back: response headers (or the trailers-only headers), the flag and
/// payload of each message, and the trailers.
struct Reply {
    headers: http::HeaderMap,
    messages: Vec<(u8, Vec<u8>)>,
    trailers: http::HeaderMap,
}

/// Calls `Calculator/Double` with `body` and the given extra request headers, over a raw
/// HTTP/2 connection.
async fn raw_double(addr: std::net::SocketAddr, headers: &[(&str, &str)], body: Bytes) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut send = send.ready().await.unwrap();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/services.Calculator/Double"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (key, value) in headers {
        request = request.header(*key, *value);
    }
    let (response, mut stream) = send.send_request(request.body(()).unwrap(), false).unwrap();
    stream.send_data(body, true).unwrap();
    let response = response.await.unwrap();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    let mut messages = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        messages.push((rest[0], rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    Reply {
        headers,
        messages,
        trailers,
    }
}

fn request(value: i64) -> Vec<u8> {
    number(value).encode_to_vec()
}

fn value_of(reply: &Reply) -> i64 {
    let (flag, payload) = &reply.messages[0];
    let payload = if *flag == 1 {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&payload[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        payload.clone()
    };
    Number::decode(&payload[..]).unwrap().value
}

#[tokio::test]
async fn a_compressing_server_compresses_for_clients_that_accept_gzip() {
    bounded(async {
        let server = compressing_server().await;
        let addr = server.local_addr();

        // Offered gzip: compressed, and said so.
        let reply = raw_double(
            addr,
            &[("grpc-accept-encoding", "deflate, gzip")],
            prefixed(0, &request(21)),
        )
        .await;
        assert_eq!(reply.headers.get("grpc-encoding").unwrap(), "gzip");
        assert_eq!(reply.messages.len(), 1);
        assert_eq!(reply.messages[0].0, 1, "the compressed flag");
        assert_eq!(value_of(&reply), 42);
        assert_eq!(reply.trailers.get("grpc-status").unwrap(), "0");

        // Not offered: plain.
        let reply = raw_double(addr, &[], prefixed(0, &request(21))).await;
        assert!(reply.headers.get("grpc-encoding").is_none());
        assert_eq!(reply.messages[0].0, 0);
        assert_eq!(value_of(&reply), 42);

        // A compressed request is read.
        let reply = raw_double(
            addr,
            &[("grpc-encoding", "gzip")],
            prefixed(1, &gzip(&request(5))),
        )
        .await;
        assert_eq!(value_of(&reply), 10);

        // Compressed without saying how: INTERNAL. An encoding the server lacks: UNIMPLEMENTED,
        // naming what it accepts.
        let reply = raw_double(addr, &[], prefixed(1, &gzip(&request(5)))).await;
        let status = reply
            .trailers
            .get("grpc-status")
            .or(reply.headers.get("grpc-status"));
        assert_eq!(status.unwrap(), &(Code::Internal as u32).to_string());
        let reply = raw_double(addr, &[("grpc-encoding", "br")], prefixed(1, b"whatever")).await;
        assert_eq!(
            reply.headers.get("grpc-status").unwrap(),
            &(Code::Unimplemented as u32).to_string()
        );
        assert!(reply
            .headers
            .get("grpc-accept-encoding")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("gzip"));
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn our_client_and_server_agree_with_compression_both_ways() {
    bounded(async {
        let server = compressing_server().await;
        let channel = GrpcChannel::builder(server.local_addr())
            .send_compressed(Encoding::Gzip)
            .connect()
            .await
            .unwrap();
        let client = CalculatorClient::new(channel);
        assert_eq!(client.double(number(21)).await.unwrap().value, 42);
        let mut stream = client.countdown(number(3)).await.unwrap();
        let mut seen = Vec::new();
        while let Some(n) = stream.message().await.unwrap() {
            seen.push(n.value);
        }
        assert_eq!(seen, [3, 2, 1, 0]);
        let total = client
            .sum((1..=4).map(number).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(total.value, 10);
        server.shutdown().await.unwrap();
    })
    .await;
}
