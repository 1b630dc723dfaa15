//! gRPC's standard health checking service, `grpc.health.v1.Health` (`Check` and `Watch`), as
//! load balancers, Kubernetes probes and `grpc_health_probe` call it.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use rust_rpc::grpc::health::{self, ServingStatus};
//!
//! let (reporter, service) = health::service();
//! reporter.set("echo.EchoService", ServingStatus::SERVING);
//! let server = rust_rpc::grpc::Server::builder()
//!     .add_service(service)
//!     .bind("127.0.0.1:50051")
//!     .await?;
//! // Later, while draining: every watcher hears of it at once.
//! reporter.set("", ServingStatus::NOT_SERVING);
//! # Ok(()) }
//! ```
//!
//! The name `""` stands for the server as a whole and starts as `SERVING`; other services are
//! unknown (`Check` answers `NOT_FOUND`, `Watch` sends `SERVICE_UNKNOWN`) until set.
//!
//! The generated code in `health/grpc.health.v1.rs` is made by rust-rpc-compiler from
//! `grpc/health/v1/health.proto` as Debian's `grpc-proto` package ships it, which carries this
//! notice: "Copyright 2015 The gRPC Authors. Licensed under the Apache License, Version 2.0
//! (the "License"); you may not use this file except in compliance with the License. You may
//! obtain a copy of the License at <http://www.apache.org/licenses/LICENSE-2.0>. Unless required
//! by applicable law or agreed to in writing, software distributed under the License is
//! distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either
//! express or implied. See the License for the specific language governing permissions and
//! limitations under the License."

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::{RpcController, Status, StreamSender};

/// The generated `grpc.health.v1` package.
#[allow(missing_docs)]
pub mod pb {
    include!("health/grpc.health.v1.rs");
}

pub use pb::health_check_response::ServingStatus;
use pb::{Health, HealthCheckRequest, HealthCheckResponse};
pub use pb::{HealthClient, HealthServer};

type Statuses = HashMap<String, ServingStatus>;

/// Sets the serving status the health service reports. Cloning shares it.
#[derive(Clone, Debug)]
pub struct HealthReporter {
    statuses: Arc<watch::Sender<Statuses>>,
}

impl HealthReporter {
    /// Sets the status of `service` (its fully qualified name, or `""` for the whole server);
    /// watchers of it hear at once if it changed.
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.statuses.send_if_modified(|statuses| {
            statuses.insert(service.to_owned(), status) != Some(status)
        });
    }

    /// Forgets `service`: `Check` answers `NOT_FOUND` again, watchers get `SERVICE_UNKNOWN`.
    pub fn remove(&self, service: &str) {
        self.statuses
            .send_if_modified(|statuses| statuses.remove(service).is_some());
    }

    /// The status `service` has now, if it has one.
    pub fn get(&self, service: &str) -> Option<ServingStatus> {
        self.statuses.borrow().get(service).copied()
    }
}

/// The health service, answering from what its [`HealthReporter`] sets.
#[derive(Clone, Debug)]
pub struct HealthService {
    statuses: watch::Receiver<Statuses>,
}

/// A reporter and the service it feeds, ready for `Server::builder().add_service(..)`. The
/// whole server (`""`) starts as `SERVING`.
pub fn service() -> (HealthReporter, HealthServer<HealthService>) {
    let (sender, receiver) =
        watch::channel(Statuses::from([(String::new(), ServingStatus::SERVING)]));
    (
        HealthReporter {
            statuses: Arc::new(sender),
        },
        HealthServer::new(HealthService { statuses: receiver }),
    )
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status,
        ..Default::default()
    }
}

impl Health for HealthService {
    async fn check(
        &self,
        _ctrl: &mut RpcController,
        request: HealthCheckRequest,
    ) -> Result<HealthCheckResponse, Status> {
        match self.statuses.borrow().get(&request.service) {
            Some(status) => Ok(response(*status)),
            None => Err(Status::not_found(format!(
                "unknown service {:?}",
                request.service
            ))),
        }
    }

    async fn watch(
        &self,
        ctrl: &mut RpcController,
        request: HealthCheckRequest,
        responses: StreamSender<HealthCheckResponse>,
    ) -> Result<(), Status> {
        let mut statuses = self.statuses.clone();
        let mut last = None;
        loop {
            let now = statuses
                .borrow_and_update()
                .get(&request.service)
                .copied()
                .unwrap_or(ServingStatus::SERVICE_UNKNOWN);
            if last != Some(now) {
                responses.send(response(now)).await?;
                last = Some(now);
            }
            tokio::select! {
                changed = statuses.changed() => {
                    if changed.is_err() {
                        // Every reporter is gone: the status cannot change again.
                        ctrl.cancelled().await;
                        return Ok(());
                    }
                }
                () = ctrl.cancelled() => return Ok(()),
            }
        }
    }
}
