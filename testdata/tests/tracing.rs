//! The `tracing` feature: a span per call on each side with the service, the method and the
//! final status code, and a server's handler running inside its span. Read by a subscriber of
//! the test's own, so nothing but `tracing` itself is involved.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use rust_rpc::{RpcController, Status};
use rust_rpc_testdata::ours::services::{Calculator, CalculatorClient, CalculatorServer, Number};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default)]
struct Recorded {
    /// Span id -> (name, fields).
    spans: HashMap<u64, (String, HashMap<String, String>)>,
    /// Each event's message and the span it happened in.
    events: Vec<(String, Option<u64>)>,
}

#[derive(Default, Clone)]
struct Recorder {
    next: Arc<AtomicU64>,
    recorded: Arc<Mutex<Recorded>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        self.recorded
            .lock()
            .unwrap()
            .spans
            .insert(id, (span.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some((_, fields)) = self
            .recorded
            .lock()
            .unwrap()
            .spans
            .get_mut(&span.into_u64())
        {
            values.record(&mut Fields(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => ENTERED.with(|e| e.borrow().last().copied()),
            None => None,
        };
        let message = fields.remove("message").unwrap_or_default();
        self.recorded.lock().unwrap().events.push((message, parent));
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(at) = entered.iter().rposition(|s| *s == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

/// Doubles, logging from inside the handler; 0 is NOT_FOUND.
struct Logging;

impl Calculator for Logging {
    async fn double(&self, _ctrl: &mut RpcController, request: Number) -> Result<Number, Status> {
        tracing::info!("inside the handler");
        if request.value == 0 {
            return Err(Status::not_found("nothing to double"));
        }
        Ok(number(request.value * 2))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_has_a_span_on_both_sides_with_its_status() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).expect("the only subscriber");
    bounded(async {
        for grpc in [false, true] {
            recorder.recorded.lock().unwrap().spans.clear();
            recorder.recorded.lock().unwrap().events.clear();
            let server = serve_alone(grpc, CalculatorServer::new(Logging)).await;
            let channel: Arc<dyn rust_rpc::RpcChannel> = if grpc {
                Arc::new(
                    rust_rpc::grpc::GrpcChannel::connect(server.local_addr())
                        .await
                        .unwrap(),
                )
            } else {
                Arc::new(
                    rust_rpc::tcp::TcpChannel::connect(server.local_addr())
                        .await
                        .unwrap(),
                )
            };
            let client = CalculatorClient::new(channel);
            assert_eq!(client.double(number(21)).await.unwrap().value, 42);
            let err = client.double(number(0)).await.unwrap_err();
            assert_eq!(err.code(), rust_rpc::Code::NotFound);
            server.shutdown().await.unwrap();

            let recorded = recorder.recorded.lock().unwrap();
            for side in ["rpc.client", "rpc.server"] {
                let mut codes: Vec<&str> = recorded
                    .spans
                    .values()
                    .filter(|(name, _)| name == side)
                    .map(|(_, fields)| {
                        assert_eq!(fields["rpc.service"], "services.Calculator");
                        assert_eq!(fields["rpc.method"], "Double");
                        fields
                            .get("rpc.grpc.status_code")
                            .map_or("none", String::as_str)
                    })
                    .collect();
                codes.sort_unstable();
                assert_eq!(codes, ["0", "5"], "{side} (grpc: {grpc})");
            }
            let inside: Vec<&Option<u64>> = recorded
                .events
                .iter()
                .filter(|(message, _)| message == "inside the handler")
                .map(|(_, span)| span)
                .collect();
            assert_eq!(inside.len(), 2);
            for span in inside {
                let name = span
                    .and_then(|s| recorded.spans.get(&s))
                    .map(|(n, _)| n.as_str());
                assert_eq!(name, Some("rpc.server"), "grpc: {grpc}");
            }
        }
    })
    .await;
}
