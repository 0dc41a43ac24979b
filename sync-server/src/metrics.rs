//! Prometheus metrics at `GET /metrics` (text exposition format, `prometheus-client`):
//! requests by route and status, their latency, bytes in and out, refusals by code, and,
//! read at each scrape, devices (enrolled, active in the last 24 hours, revoked), incidents
//! due soon and overdue (the center's index) and the length of the change log. Served on
//! the admin listener.
//!
//! Labels are routes as declared and protocol codes: a bounded set, never a value a client
//! sent.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::service::{Service, ServiceError};
use crate::storage::{Device, Storage};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    route: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DueLabels {
    due: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    state: &'static str,
}

/// One server's metrics (each router has its own).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    bytes: Family<BytesLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    devices: Family<DeviceLabels, Gauge>,
    logged_changes: Gauge,
    incidents: Family<DueLabels, Gauge>,
    /// The refusal codes seen so far (for the status page's table).
    codes: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
    server_errors: Counter,
}

/// A request as the middleware saw it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub route: &'a str,
    pub status: u16,
    pub seconds: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The protocol code of a refusal.
    pub refusal: Option<&'static str>,
}

const ACTIVE_WINDOW_MS: i64 = 24 * 3600 * 1000;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wangge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "HTTP requests answered, by route and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to about 4 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 13))
        });
        registry.register("request_duration_seconds", "Time to answer a request, by route", latency.clone());
        let bytes = Family::<BytesLabels, Counter>::default();
        registry.register("http_bytes", "Body bytes received (in) and sent (out), by route", bytes.clone());
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register("refusals", "Requests refused, by protocol error code", refusals.clone());
        let devices = Family::<DeviceLabels, Gauge>::default();
        registry.register(
            "devices",
            "Devices: enrolled (not revoked), active in the last 24 h, revoked",
            devices.clone(),
        );
        let logged_changes = Gauge::default();
        registry.register("logged_changes", "The last sequence number of the change log", logged_changes.clone());
        let incidents = Family::<DueLabels, Gauge>::default();
        registry.register(
            "incidents",
            "Incidents due within a working day (soon) and past their deadline (overdue)",
            incidents.clone(),
        );
        let server_errors = Counter::default();
        registry.register("server_errors", "Requests answered with a 5xx status", server_errors.clone());
        Self {
            registry,
            requests,
            latency,
            bytes,
            refusals,
            devices,
            logged_changes,
            incidents,
            codes: Default::default(),
            server_errors,
        }
    }
}

impl Metrics {
    pub fn observe(&self, request: &Observed<'_>) {
        let route = request.route.to_owned();
        self.requests.get_or_create(&RequestLabels { route: route.clone(), status: request.status }).inc();
        self.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(request.seconds);
        for (direction, n) in [("in", request.bytes_in), ("out", request.bytes_out)] {
            if n > 0 {
                self.bytes.get_or_create(&BytesLabels { route: route.clone(), direction }).inc_by(n);
            }
        }
        if let Some(code) = request.refusal {
            self.refusals.get_or_create(&RefusalLabels { code }).inc();
            self.codes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(code);
        }
        if request.status >= 500 {
            self.server_errors.inc();
        }
    }

    /// Refusals so far, by code.
    pub fn refusal_counts(&self) -> Vec<(&'static str, u64)> {
        let codes = self.codes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        codes
            .into_iter()
            .map(|code| (code, self.refusals.get(&RefusalLabels { code }).map_or(0, |counter| counter.get())))
            .collect()
    }

    /// Answers with a 5xx status so far.
    pub fn server_error_count(&self) -> u64 {
        self.server_errors.get()
    }

    /// The exposition text, with the storage's figures and the incidents due read now.
    pub fn render<S: Storage>(&self, service: &Service<S>, now_ms: i64) -> Result<String, ServiceError> {
        let due = service.incidents_due()?;
        self.incidents.get_or_create(&DueLabels { due: "soon" }).set(i64::try_from(due.soon).unwrap_or(i64::MAX));
        self.incidents.get_or_create(&DueLabels { due: "overdue" }).set(i64::try_from(due.overdue).unwrap_or(i64::MAX));
        let storage = service.storage();
        let devices = storage.devices()?;
        let count = |keep: &dyn Fn(&Device) -> bool| devices.iter().filter(|device| keep(device)).count() as i64;
        let active = |device: &Device| device.last_seen_ms.is_some_and(|seen| now_ms - seen <= ACTIVE_WINDOW_MS);
        self.devices.get_or_create(&DeviceLabels { state: "enrolled" }).set(count(&|device| !device.revoked));
        self.devices
            .get_or_create(&DeviceLabels { state: "active_24h" })
            .set(count(&|device| !device.revoked && active(device)));
        self.devices.get_or_create(&DeviceLabels { state: "revoked" }).set(count(&|device| device.revoked));
        self.logged_changes.set(storage.max_seq()?);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        Ok(text)
    }
}
