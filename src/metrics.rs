//! Prometheus metrics of every stage, served as text on `GET /metrics`.
//! Counters are atomics: cheap enough for the ingest hot path.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Messages accepted, by family.
    pub messages: IntCounterVec,
    /// The same counters resolved once per family (a labelled lookup per
    /// message takes a lock and a hash on the hot path).
    pub messages_by_family: [IntCounter; crate::contract::Family::ALL.len()],
    /// Messages refused, by reason.
    pub rejected: IntCounterVec,
    /// Live state sizes, by entity.
    pub state_size: IntGaugeVec,
    /// Receive time minus source `ts`, seconds.
    pub ingest_lag: Histogram,
    /// 1 while every connection to the broker is up (see `mqtt.priority_families`).
    pub mqtt_connected: IntGauge,
    pub mqtt_reconnects: IntCounter,
    /// QoS 1 messages acknowledged to the broker.
    pub acks: IntCounter,
    // Hub (fan-out).
    pub ws_clients: IntGauge,
    pub ws_frames: IntCounter,
    pub ws_bytes: IntCounter,
    pub ws_conflated: IntCounter,
    pub ws_disconnects: IntCounterVec,
    pub ws_max_lag_frames: IntGauge,
    pub hub_seq: IntGauge,
    // Store.
    pub store_rows: IntCounter,
    pub store_failures: IntCounter,
    pub store_dropped: IntCounterVec,
    pub store_buffered: IntGauge,
    pub store_degraded: IntGauge,
    pub store_lag_ms: IntGauge,
    pub timescaledb_jobs_failed: IntGauge,
    /// Messages service applications sent over HTTP and Kendali published, by family.
    pub http_ingest: IntCounterVec,
    pub http_ingest_throttled: IntCounter,
    /// Worker threads of the runtime Kendali runs on (`runtime.worker_threads`).
    pub runtime_workers: IntGauge,
    /// 1 on the node that runs the rules (one of several, see `store::leader`).
    pub rules_leader: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("kendali".into()), None).expect("static prefix is valid");
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("static metric definition");
            registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
            g
        };
        let messages = counter_vec(
            "messages_total",
            "Messages accepted from the bus, by family",
            "family",
        );
        let rejected = counter_vec(
            "rejected_total",
            "Messages refused and dead-lettered, by reason",
            "reason",
        );
        let state_size = IntGaugeVec::new(
            Opts::new("state_entities", "Entities in the live state, by kind"),
            &["entity"],
        )
        .expect("static metric definition");
        registry
            .register(Box::new(state_size.clone()))
            .expect("metric names are unique");
        let ingest_lag = Histogram::with_opts(
            HistogramOpts::new(
                "ingest_lag_seconds",
                "Receive time minus the message's source ts",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0,
            ]),
        )
        .expect("static metric definition");
        registry
            .register(Box::new(ingest_lag.clone()))
            .expect("metric names are unique");
        let messages_by_family =
            crate::contract::Family::ALL.map(|f| messages.with_label_values(&[f.as_str()]));
        Metrics {
            messages_by_family,
            messages,
            rejected,
            state_size,
            ingest_lag,
            mqtt_connected: gauge(
                "mqtt_connected",
                "1 while every connection to the MQTT broker is up",
            ),
            mqtt_reconnects: counter(
                "mqtt_connects_total",
                "Successful (re)connections to the broker",
            ),
            acks: counter(
                "mqtt_acks_total",
                "QoS 1 messages acknowledged to the broker after they were handled",
            ),
            ws_clients: gauge("ws_clients", "Websocket clients connected"),
            ws_frames: counter("ws_frames_total", "Websocket data frames sent"),
            ws_bytes: counter("ws_bytes_total", "Websocket bytes sent"),
            ws_conflated: counter(
                "ws_conflated_total",
                "State updates replaced by a newer one before sending",
            ),
            ws_disconnects: counter_vec(
                "ws_disconnects_total",
                "Websocket disconnects, by reason",
                "reason",
            ),
            ws_max_lag_frames: gauge(
                "ws_client_lag_frames_max",
                "Largest number of frames queued for one client",
            ),
            hub_seq: gauge("hub_seq", "Last sequence number assigned by the hub"),
            store_rows: counter("store_rows_total", "Rows committed to the store"),
            store_failures: counter(
                "store_write_failures_total",
                "Store writes that failed (and were retried)",
            ),
            store_dropped: counter_vec(
                "store_dropped_total",
                "Rows dropped because the store's bounded buffer was full",
                "what",
            ),
            store_buffered: gauge("store_buffered_rows", "Rows waiting to be written"),
            store_degraded: gauge("store_degraded", "1 while database writes are failing"),
            store_lag_ms: gauge(
                "store_lag_ms",
                "Time from receiving the newest message to committing it, milliseconds",
            ),
            timescaledb_jobs_failed: gauge(
                "timescaledb_jobs_failed",
                "TimescaleDB background jobs whose last run failed (0 on plain PostgreSQL)",
            ),
            http_ingest: counter_vec(
                "http_ingest_total",
                "Messages service applications sent over HTTP, published onto the bus, by family",
                "family",
            ),
            http_ingest_throttled: counter(
                "http_ingest_throttled_total",
                "HTTP ingest requests refused with 429 (ingest.http_per_minute)",
            ),
            runtime_workers: gauge(
                "runtime_workers",
                "Worker threads of the async runtime (runtime.worker_threads)",
            ),
            rules_leader: gauge(
                "rules_leader",
                "1 on the node that runs the rules: alerts, the traffic desk's own commands (several nodes on mqtt.shared_group: one of them)",
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding gathered metrics into a Vec cannot fail");
        String::from_utf8(buf).expect("the text encoder writes UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
