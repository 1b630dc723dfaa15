//! Retries of calls whose method the user marked retryable, in the shape of gRPC's retry
//! policy (gRFC A6, "gRPC Retry Design"): a bounded number of attempts, a randomized
//! exponential backoff between them, and a list of status codes worth another attempt. An
//! attempt is committed, and never retried, once a response message has arrived; every
//! attempt carries the call's one deadline, so the deadline spans them all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::BalancedChannel;
use crate::call::{byte_stream, ByteStream, ClientCall, Inbound, Outbound, OutgoingCall};
use crate::service::{BoxFuture, MethodDescriptor};
use crate::{Code, Metadata, Status};

/// How a method's failed calls are tried again ([`super::BalancedChannelBuilder::retry`]).
///
/// A call is retried when an attempt ends with one of the retryable codes before any response
/// message arrived, while attempts are left and the deadline has not passed. Before attempt
/// `n + 1` the call waits a random time between 0 and
/// `min(initial_backoff * backoff_multiplier^(n - 1), max_backoff)`, and it goes to another
/// endpoint where there is one. Calls that send a stream of requests are not retried.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at most 5, as gRPC caps it. 1 (or 0) retries
    /// nothing.
    pub max_attempts: u32,
    /// The longest first pause.
    pub initial_backoff: Duration,
    /// The longest pause of any later attempt.
    pub max_backoff: Duration,
    /// How much the longest pause grows after each attempt.
    pub backoff_multiplier: f64,
    /// The status codes that make an attempt worth repeating (`UNAVAILABLE` is the usual one:
    /// the server went away or was restarting).
    pub retryable_codes: Vec<Code>,
}

impl RetryPolicy {
    /// Up to `max_attempts` attempts (capped at 5) on the given codes, with pauses from 100 ms
    /// doubling up to 1 s.
    pub fn new(max_attempts: u32, retryable_codes: impl IntoIterator<Item = Code>) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.min(5),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            retryable_codes: retryable_codes.into_iter().collect(),
        }
    }

    /// This policy with pauses starting at up to `initial`, multiplied by `multiplier` after
    /// each attempt, never longer than `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration, multiplier: f64) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self.backoff_multiplier = if multiplier.is_finite() && multiplier > 0.0 {
            multiplier
        } else {
            1.0
        };
        self
    }
}

/// The attempt in progress, so that cancelling the call reaches it.
struct Current {
    outbound: Mutex<Option<Arc<dyn Outbound>>>,
    cancelled: AtomicBool,
}

impl Current {
    fn set(&self, outbound: Arc<dyn Outbound>) {
        *self.outbound.lock().unwrap_or_else(|p| p.into_inner()) = Some(outbound);
    }

    fn get(&self) -> Option<Arc<dyn Outbound>> {
        self.outbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The call's side of the requests: its single request went out with each attempt, so what
/// is left is half-closing and cancelling, which go to the attempt in progress.
struct Requests(Arc<Current>);

impl Outbound for Requests {
    fn send(&self, _message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async {
            Err(Status::internal(
                "a call with a single request sent another one",
            ))
        })
    }

    fn max_message_size(&self) -> usize {
        self.0.get().map_or(usize::MAX, |o| o.max_message_size())
    }

    fn close_send(&self) {
        if let Some(outbound) = self.0.get() {
            outbound.close_send();
        }
    }

    fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(outbound) = self.0.get() {
            outbound.cancel();
        }
    }
}

/// Starts the call's attempts in the background and returns the call they answer.
pub(super) fn start(
    channel: BalancedChannel,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
    policy: RetryPolicy,
) -> ClientCall {
    let (inbound, responses) = byte_stream(crate::call::DEFAULT_WINDOW, None);
    let current = Arc::new(Current {
        outbound: Mutex::new(None),
        cancelled: AtomicBool::new(false),
    });
    tokio::spawn(attempts(
        channel,
        method,
        call,
        policy,
        inbound,
        current.clone(),
    ));
    ClientCall {
        requests: Arc::new(Requests(current)),
        responses,
    }
}

async fn attempts(
    channel: BalancedChannel,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
    policy: RetryPolicy,
    out: Inbound,
    current: Arc<Current>,
) {
    let deadline = call.deadline.map(tokio::time::Instant::from_std);
    let mut tried: Vec<String> = Vec::new();
    let mut longest = policy.initial_backoff;
    for attempt in 1..=policy.max_attempts {
        let (status, headers, trailers) =
            match channel.start_once(method, call.clone(), &tried).await {
                Ok((started, addr)) => {
                    current.set(started.requests.clone());
                    if current.cancelled.load(Ordering::SeqCst) {
                        started.requests.cancel();
                    }
                    let mut responses = started.responses;
                    match responses.next_bytes().await {
                        Ok(Some(first)) => return forward(responses, first, &out, &current).await,
                        Ok(None) => {
                            if let Some(headers) = responses.headers_now() {
                                out.headers(headers);
                            }
                            out.finish(Ok(()), responses.trailers().unwrap_or_default());
                            return;
                        }
                        Err(status) => {
                            tried.push(addr);
                            (status, responses.headers_now(), responses.trailers())
                        }
                    }
                }
                Err(status) => (status, None, None),
            };
        let retry = attempt < policy.max_attempts
            && policy.retryable_codes.contains(&status.code())
            && !current.cancelled.load(Ordering::SeqCst)
            && pushback(trailers.as_ref()) != Some(None);
        if !retry {
            if let Some(headers) = headers {
                out.headers(headers);
            }
            out.finish(Err(status), trailers.unwrap_or_default());
            return;
        }
        // The server may name the pause (gRPC's `grpc-retry-pushback-ms`); else a random one.
        let pause = match pushback(trailers.as_ref()) {
            Some(Some(pause)) => pause,
            _ => longest.mul_f64(random_fraction()),
        };
        longest = longest
            .mul_f64(policy.backoff_multiplier)
            .min(policy.max_backoff);
        let resume = tokio::time::Instant::now() + pause;
        if deadline.is_some_and(|d| d <= resume) {
            if let Some(deadline) = deadline {
                tokio::time::sleep_until(deadline).await;
            }
            out.finish(
                Err(Status::deadline_exceeded(format!(
                    "deadline exceeded after {attempt} attempts; the last ended with {status}"
                ))),
                Metadata::new(),
            );
            return;
        }
        tokio::time::sleep_until(resume).await;
    }
}

/// The server's word on retrying, from the `grpc-retry-pushback-ms` trailer: `None` when it
/// says nothing, `Some(None)` when it says not to retry (a negative or malformed value, as gRPC
/// reads it), `Some(Some(pause))` when it names the pause.
fn pushback(trailers: Option<&Metadata>) -> Option<Option<Duration>> {
    let value = trailers?.get("grpc-retry-pushback-ms")?;
    Some(value.trim().parse::<u64>().ok().map(Duration::from_millis))
}

/// Passes all of a started call's responses on to `out`: the replay of a refused call.
pub(super) async fn forward_all(started: ClientCall, out: &Inbound) {
    let current = Current {
        outbound: Mutex::new(Some(started.requests)),
        cancelled: AtomicBool::new(false),
    };
    let mut responses = started.responses;
    match responses.next_bytes().await {
        Ok(Some(first)) => forward(responses, first, out, &current).await,
        Ok(None) => {
            out.headers(responses.headers_now().unwrap_or_default());
            out.finish(Ok(()), responses.trailers().unwrap_or_default());
        }
        Err(status) => {
            if let Some(headers) = responses.headers_now() {
                out.headers(headers);
            }
            out.finish(Err(status), responses.trailers().unwrap_or_default());
        }
    }
}

/// Passes the committed attempt's responses on to the call.
async fn forward(mut responses: ByteStream, first: Bytes, out: &Inbound, current: &Current) {
    out.headers(responses.headers_now().unwrap_or_default());
    let mut next = first;
    loop {
        if out
            .send_with(next, responses.last_compressed())
            .await
            .is_err()
        {
            // Nobody reads the call any more.
            if let Some(outbound) = current.get() {
                outbound.cancel();
            }
            return;
        }
        next = match responses.next_bytes().await {
            Ok(Some(message)) => message,
            Ok(None) => {
                out.finish(Ok(()), responses.trailers().unwrap_or_default());
                return;
            }
            Err(status) => {
                out.finish(Err(status), responses.trailers().unwrap_or_default());
                return;
            }
        };
    }
}

/// A number in [0, 1) for the backoff's jitter: the clock's nanoseconds, mixed.
fn random_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushback_is_read_as_grpc_reads_it() {
        assert_eq!(pushback(None), None);
        let mut trailers = Metadata::new();
        assert_eq!(pushback(Some(&trailers)), None);
        trailers.insert("grpc-retry-pushback-ms", "250");
        assert_eq!(
            pushback(Some(&trailers)),
            Some(Some(Duration::from_millis(250)))
        );
        trailers.insert("grpc-retry-pushback-ms", "-1");
        assert_eq!(pushback(Some(&trailers)), Some(None));
    }

    #[test]
    fn policies_cap_attempts_and_keep_the_multiplier_sane() {
        let policy = RetryPolicy::new(9, [Code::Unavailable]).backoff(
            Duration::from_millis(10),
            Duration::from_millis(50),
            f64::NAN,
        );
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.backoff_multiplier, 1.0);
        for _ in 0..100 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
