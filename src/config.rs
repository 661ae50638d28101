//! Typed settings: compiled-in defaults, then an optional TOML file, then
//! `KENDALI__SECTION__KEY` environment variables, then the command line
//! (whose most used flags also read short variables such as
//! `KENDALI_HTTP_ADDR`). Validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::contract::Family;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Room a packet needs beyond its payload: the topic (a contract topic is
/// at most about 300 bytes), MQTT 5 properties and the length fields.
pub const PACKET_OVERHEAD: usize = 4096;
/// The largest remaining length MQTT can express (256 MiB - 1).
pub const MQTT_MAX_PACKET: usize = 268_435_455;

/// Everything Kendali can be told.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub mqtt: MqttSettings,
    pub ingest: IngestSettings,
    pub state: StateSettings,
    pub hub: HubSettings,
    pub database: DatabaseSettings,
    pub sim: SimSettings,
    pub runtime: RuntimeSettings,
    pub auth: AuthSettings,
    pub dispatch: DispatchSettings,
    pub traffic: crate::domain::traffic::TrafficSettings,
    pub alerts: crate::domain::alerts::AlertSettings,
    pub cities: CitiesSettings,
}

/// What differs between the cities a room serves: their local time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CitiesSettings {
    /// The local time of a city not in `time_zones`.
    pub default_time_zone: crate::domain::Zone,
    /// Per city slug, its zone where it is not the default (`badung = "WITA"`).
    pub time_zones: std::collections::BTreeMap<String, crate::domain::Zone>,
}

impl CitiesSettings {
    pub fn zones(&self) -> crate::domain::Zones {
        crate::domain::Zones::new(self.default_time_zone, &self.time_zones)
    }
}

/// Which answer-time standard the call-taking targets follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStandard {
    /// NENA STA-020.1-2020: 90 % answered within 15 s, 95 % within 20 s.
    Nena,
    /// NFPA 1225: 90 % answered within 10 s.
    Nfpa,
}

impl AnswerStandard {
    /// `(within seconds, share of calls)` targets.
    pub fn targets(self) -> &'static [(u32, f64)] {
        match self {
            AnswerStandard::Nena => &[(15, 0.90), (20, 0.95)],
            AnswerStandard::Nfpa => &[(10, 0.90)],
        }
    }
}

/// The targets the dispatcher console and the wall hold calls and units to
/// (timers turn amber near a target, red past it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchSettings {
    pub answer_standard: AnswerStandard,
    /// Seconds from answer to the first unit dispatched, for priorities 1 to 4.
    pub dispatch_target_s: [u32; 4],
    /// A unit longer than this in one stage is highlighted: dispatched (not
    /// yet en route), en route, on scene.
    pub unit_dispatched_s: u32,
    pub unit_en_route_s: u32,
    pub unit_on_scene_s: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            answer_standard: AnswerStandard::Nena,
            dispatch_target_s: [60, 120, 300, 600],
            unit_dispatched_s: 120,
            unit_en_route_s: 900,
            unit_on_scene_s: 3600,
        }
    }
}

/// Sessions and throttles.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// A user's session ends after this many minutes without a request
    /// (wall displays excepted).
    pub idle_timeout_min: u64,
    /// A user's session ends this many hours after login (one shift).
    pub absolute_timeout_h: u64,
    /// A wall display's session lasts this many days.
    pub display_session_days: u64,
    /// Operator actions (commands, dispatches, acknowledgements) per user
    /// per minute, after a burst of `actions_burst`; beyond, 429.
    pub actions_per_minute: u32,
    pub actions_burst: u32,
    /// An open websocket checks this often that its session still holds
    /// (revoked, expired, user disabled: the socket closes with 1008).
    pub session_recheck_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            idle_timeout_min: 30,
            absolute_timeout_h: 12,
            display_session_days: 365,
            // A traffic officer acts a few times a minute on a busy junction;
            // a script sending a thousand commands does not get through.
            actions_per_minute: 60,
            actions_burst: 20,
            session_recheck_s: 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Listen address of the web server (screens, API, websocket).
    pub addr: SocketAddr,
    /// Origins allowed to open `/ws` besides the server's own (e.g. `https://wall.example`).
    pub allowed_origins: Vec<String>,
    /// A request's head must arrive within this many seconds of the
    /// connection (or of the previous request on it), else 408.
    pub head_timeout_s: u64,
    /// A request's body must arrive within this many seconds of its head,
    /// else 408: a client sending a byte a second would hold a connection.
    pub body_timeout_s: u64,
    /// Networks (CIDR) served a read-only wall without login, without
    /// callers' personal data. Loopback by default, so that the one-command
    /// start shows the room at once; set it empty in production.
    pub anonymous_wall_networks: Vec<String>,
    /// Host names the server answers to besides IP addresses and
    /// `localhost` (e.g. `kendali.kota.go.id`): a request for any other
    /// name is refused, so a DNS-rebinding page cannot read the room.
    pub server_names: Vec<String>,
    /// Reverse proxies (CIDR) whose `X-Forwarded-For`/`-Proto`/`-Host` are believed.
    pub trusted_proxies: Vec<String>,
    /// `/metrics` answers loopback clients, and others that send
    /// `Authorization: Bearer <this>` when it is set.
    pub metrics_token: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM) and key (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            addr: "127.0.0.1:8080".parse().expect("literal address"),
            allowed_origins: Vec::new(),
            head_timeout_s: 5,
            // A JSON body of at most 64 KiB, from a console on the room's LAN.
            body_timeout_s: 10,
            anonymous_wall_networks: vec!["127.0.0.1/32".into(), "::1/128".into()],
            server_names: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// MQTT protocol version spoken to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MqttProtocol {
    #[serde(rename = "3.1.1", alias = "v4", alias = "4")]
    V311,
    #[serde(rename = "5", alias = "v5")]
    V5,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSettings {
    /// External broker, `mqtt://host:port` or `mqtts://host:port` (TLS).
    /// Unset: start the embedded broker on `broker_addr` and use it.
    pub url: Option<String>,
    /// Listen address of the embedded broker.
    pub broker_addr: SocketAddr,
    pub protocol: MqttProtocol,
    /// Fixed client id: the broker keeps our session (and queued QoS 1
    /// messages) across reconnects only under the same id.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// CA bundle (PEM) for `mqtts://`; the system roots are not read (air-gapped rooms use their own CA).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub tls_client_cert: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    pub keep_alive_s: u64,
    /// Shared-subscription group: several Kendali nodes split the bus with `$share/{group}/...`.
    pub shared_group: Option<String>,
    /// Families subscribed (default: all).
    pub families: Vec<Family>,
    /// Families read on a connection of their own (client id
    /// `{client_id}-priority`), so that a flood of telemetry queued on the
    /// main connection never delays them. Default: the 112/119 call events.
    /// Empty (or every subscribed family): one connection.
    pub priority_families: Vec<Family>,
    /// Reconnect backoff, doubling from min to max.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// MQTT 5 session expiry: how long the broker keeps our session while we are away.
    pub session_expiry_s: u32,
    /// Outgoing in-flight window (our publishes awaiting PUBACK).
    pub inflight: u16,
    /// Largest MQTT packet Kendali reads or writes, bytes (the packet's
    /// remaining length: topic, properties and payload). The broker must not
    /// pass larger ones: a packet above it cannot be read, costs the
    /// connection, and a QoS 1 one comes back at every reconnect. The
    /// embedded broker takes this value, `kendali broker-config` prints it as
    /// Mosquitto's `max_packet_size`, and over MQTT 5 Kendali announces it in
    /// CONNECT (the broker then withholds larger packets). Everything up to
    /// it is received; a payload above `ingest.max_payload_bytes` is
    /// dead-lettered as `payload_too_large` and acknowledged.
    pub max_packet_bytes: usize,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            url: None,
            broker_addr: "127.0.0.1:1883".parse().expect("literal address"),
            protocol: MqttProtocol::V311,
            client_id: "kendali-1".into(),
            username: None,
            password: None,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            keep_alive_s: 15,
            shared_group: None,
            families: Family::ALL.to_vec(),
            priority_families: vec![Family::Calls],
            reconnect_min_ms: 200,
            reconnect_max_ms: 10_000,
            session_expiry_s: 3600,
            inflight: 100,
            max_packet_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// How far ahead of the server clock a `ts` may be, seconds.
    pub max_future_s: i64,
    /// Dead-letter entries kept in memory for `/api/deadletter`.
    pub deadletter_capacity: usize,
    /// Messages one application token may send over HTTP
    /// (`/api/ingest/...`) per minute, after a burst of `http_burst`;
    /// beyond, 429 with `Retry-After`: one misbehaving application cannot
    /// flood the bus.
    pub http_per_minute: u32,
    pub http_burst: u32,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_payload_bytes: 64 * 1024,
            max_future_s: 300,
            deadletter_capacity: 1000,
            http_per_minute: 6000,
            http_burst: 500,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSettings {
    /// A feed silent this long is marked stale, seconds, per family.
    pub stale_atcs_s: u64,
    pub stale_calls_s: u64,
    pub stale_units_s: u64,
    pub stale_apps_s: u64,
    pub stale_kpi_s: u64,
    /// Closed calls kept in the live state (most recent first).
    pub closed_calls_kept: usize,
    /// Calls held in the live state, open or closed. Past this the oldest
    /// call leaves the live state and the screens (not the database): calls
    /// whose closing never arrives cannot grow memory without bound.
    pub calls_kept: usize,
    /// Recent events of each kind and city kept for snapshots (a screen
    /// keeps 400 of each kind: a snapshot, a failed-over screen's too,
    /// gives it what it would hold had it stayed connected).
    pub recent_events_kept: usize,
    /// Event ids remembered for duplicate detection.
    pub dedup_window: usize,
    /// A call is flagged as a possible duplicate of an open call received
    /// within this many seconds of it, from the same callback number or
    /// within `duplicate_radius_m` of it.
    pub duplicate_window_s: u64,
    pub duplicate_radius_m: f64,
    /// KPI samples kept per metric for sparklines.
    pub kpi_window: usize,
    /// Entities the live state holds besides calls and commands (bounded on
    /// their own): intersections, units, KPIs, feeds and cities. A message
    /// that would add one more is refused as `state_full`; a call event never
    /// is. With the contract's caps on text this bounds the state in bytes.
    pub max_entities: usize,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            stale_atcs_s: 10,
            // A quiet night can leave a line silent for a while: stale means "no
            // message at all", which for calls includes no heartbeat-like traffic.
            stale_calls_s: 900,
            stale_units_s: 600,
            stale_apps_s: 600,
            stale_kpi_s: 60,
            closed_calls_kept: 200,
            calls_kept: 5_000,
            recent_events_kept: 500,
            dedup_window: 200_000,
            // A fire or a crash brings several calls from the same street
            // within minutes; a neighbourhood apart is another incident.
            duplicate_window_s: 900,
            duplicate_radius_m: 300.0,
            kpi_window: 360,
            // A province's worth of cities: a junction is two entities (itself
            // and its feed) of about 2 KB each with four approaches, so the
            // bound is about 200 MB of such junctions. `kendali bench` runs
            // ten steps of 2,000 junctions, each in a city of its own.
            max_entities: 100_000,
        }
    }
}

impl StateSettings {
    pub fn stale_after(&self, f: Family) -> Duration {
        Duration::from_secs(match f {
            Family::Atcs => self.stale_atcs_s,
            Family::Calls => self.stale_calls_s,
            Family::Units => self.stale_units_s,
            Family::Apps => self.stale_apps_s,
            Family::Kpi => self.stale_kpi_s,
            // Alerts have no feed of their own: never asked.
            Family::Alerts => self.stale_kpi_s,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Frames are batched on this tick, milliseconds.
    pub tick_ms: u64,
    /// Sequence numbers kept for resume (`since=`).
    pub ring_capacity: usize,
    /// Frames queued per client before it lags (is then fed from the ring).
    pub client_queue_frames: usize,
    /// Bytes queued per client, likewise: frames differ in size by 1000x, so
    /// memory is bounded by bytes as well as by frames.
    pub client_queue_bytes: usize,
    /// A lagging client owed more than this many updates (after conflation)
    /// is disconnected with close code 4001 and told to resume.
    pub client_max_backlog: usize,
    /// Heartbeat ping interval and the silence after which a peer is dropped, seconds.
    pub ping_interval_s: u64,
    pub client_timeout_s: u64,
    /// Largest client frame accepted, bytes.
    pub max_client_frame_bytes: usize,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            tick_ms: 50,
            // 4M slots of 8 bytes: over 60 s at 50,000 updates/s; superseded state
            // updates are tombstoned, so memory holds only events and live entities.
            ring_capacity: 4 << 20,
            client_queue_frames: 64,
            client_queue_bytes: 1 << 20,
            client_max_backlog: 50_000,
            ping_interval_s: 10,
            client_timeout_s: 30,
            max_client_frame_bytes: 16 * 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// PostgreSQL URL; unset means the bounded in-memory store (history not persisted).
    pub url: Option<String>,
    /// Connections in the pool (writes use one at a time; history queries the rest).
    pub pool_size: usize,
    /// Rows per write: telemetry readings (one per approach; a message's
    /// readings are one table row), or events. With 20,000 readings (about
    /// 5,000 table rows) per COPY the store kept up at 70,000 msg/s offered
    /// (247,000 readings/s); with 5,000 it fell behind at 215,000.
    pub batch_rows: usize,
    /// A partial batch is written after this many milliseconds.
    pub flush_ms: u64,
    /// Telemetry rows held while the database is slow or away; beyond this new
    /// rows are dropped and counted (`kendali_store_dropped_total{what="telemetry"}`).
    pub telemetry_buffer_rows: usize,
    /// How often the per-minute sums of committed telemetry are written to
    /// `atcs_minute`, seconds (history reads whole minutes from there).
    pub rollup_every_s: u64,
    /// Raw telemetry kept, days (on TimescaleDB, `atcs_state`'s retention
    /// policy is set to it at start).
    pub telemetry_retention_days: i64,
    /// Everything else kept, days (on TimescaleDB, the other hypertables'
    /// retention policies).
    pub retention_days: i64,
    /// How often old rows are pruned and TimescaleDB's jobs checked, seconds.
    pub maintenance_every_s: u64,
    /// How often a replay checkpoint is stored, seconds (what the day's
    /// events had built: a replay starts from the newest before its moment
    /// instead of the day's start); 0 stores none. A checkpoint of a day of
    /// 50,000 call events is about 2 MB as stored: hourly, 48 MB a day.
    pub checkpoint_every_s: u64,
    /// Replay checkpoints kept, days (a replay further back rebuilds its
    /// first moment from the day's start: about a second for 50,000 events).
    pub checkpoint_retention_days: i64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            pool_size: 4,
            batch_rows: 20000,
            flush_ms: 200,
            telemetry_buffer_rows: 1_000_000,
            rollup_every_s: 30,
            telemetry_retention_days: 30,
            retention_days: 400,
            maintenance_every_s: 3600,
            checkpoint_every_s: 3600,
            checkpoint_retention_days: 14,
        }
    }
}

/// The async runtime that runs the pipeline (ingest, state, hub, store and
/// the database client), and how the pipeline stops; the web server has its
/// own worker threads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Worker threads; 0 is one per core. The default is 1: the pipeline is a
    /// chain of single tasks, each handing every message to the next, and on
    /// one thread a hand-off wakes no other thread. On the bench's 2-core
    /// machine, shared with the broker and the database, one thread took
    /// 17-22 % less CPU than two at 50,000 msg/s (call p99 24-32 ms against
    /// 37-52 ms) and 10-16 % less at 65,000-70,000, in interleaved pairs.
    /// That thread was 54 % busy at 70,000 msg/s; past one node's worth,
    /// more nodes share the bus (`mqtt.shared_group`).
    pub worker_threads: usize,
    /// On SIGTERM or Ctrl-C the stages drain in data-flow order and the
    /// store writes its last batch and sends its acks: for at most this
    /// many seconds after the state has handed off, seconds. Past it (the
    /// database is away), what is unwritten stays unacknowledged and the
    /// broker redelivers it at the next start. A stop takes milliseconds,
    /// or this plus milliseconds with the database away, and at worst 3 s
    /// more (a stage that overruns, a broker that does not answer): keep it
    /// below the supervisor's own limit (Docker's default is 10 s, systemd's 90 s).
    pub shutdown_grace_s: u64,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            worker_threads: 1,
            shutdown_grace_s: 8,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSettings {
    /// Run the simulated city in-process (the default for demos; off in production).
    pub enabled: bool,
    /// Built-in scenario name or path to a scenario file.
    pub scenario: String,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Overrides the scenario's time acceleration.
    pub accel: Option<f64>,
    /// Simulation step, milliseconds.
    pub tick_ms: u64,
    /// People answer and dispatch at the console: calls ring until answered
    /// (or abandoned) and units wait for assignments. Scenarios may also ask for it.
    pub human_dispatch: bool,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            enabled: true,
            scenario: "cilegon-weekday".into(),
            seed: None,
            accel: None,
            tick_ms: 200,
            human_dispatch: false,
        }
    }
}

impl Settings {
    /// Defaults, then `file` (if given, it must exist; else `kendali.toml` if
    /// present), then `KENDALI__SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    return Err(ConfigError::Invalid(format!(
                        "config file {} does not exist",
                        f.display()
                    )));
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("kendali.toml")),
        }
        fig = fig.merge(Env::prefixed("KENDALI__").split("__"));
        let s: Settings = fig.extract().map_err(Box::new)?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(u) = &self.mqtt.url {
            crate::bus::BrokerUrl::parse(u).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        if self.mqtt.client_id.is_empty() || self.mqtt.client_id.len() > 64 {
            return bad("mqtt.client_id must be 1..=64 characters".into());
        }
        if self.ingest.max_payload_bytes < 1024 || self.ingest.max_payload_bytes > 16 << 20 {
            return bad("ingest.max_payload_bytes must be 1 KiB..=16 MiB".into());
        }
        // Room above the payload limit for the topic and the packet's header,
        // so that an oversize payload reaches the dead-letter.
        let room = self.ingest.max_payload_bytes + PACKET_OVERHEAD;
        if self.mqtt.max_packet_bytes < room || self.mqtt.max_packet_bytes > MQTT_MAX_PACKET {
            return bad(format!(
                "mqtt.max_packet_bytes must be {room}..={MQTT_MAX_PACKET} (at least ingest.max_payload_bytes + {PACKET_OVERHEAD})"
            ));
        }
        if let Some(c) = self
            .cities
            .time_zones
            .keys()
            .find(|c| !crate::contract::topic::is_city_slug(c))
        {
            return bad(format!(
                "cities.time_zones: {c:?} is not a city slug (a-z, 0-9, '-')"
            ));
        }
        if self.hub.tick_ms == 0 || self.hub.tick_ms > 1000 {
            return bad("hub.tick_ms must be 1..=1000".into());
        }
        if self.state.max_entities < 100 {
            return bad("state.max_entities must be at least 100".into());
        }
        if self.state.calls_kept <= self.state.closed_calls_kept {
            return bad("state.calls_kept must exceed state.closed_calls_kept".into());
        }
        if self.hub.ring_capacity < 1024 {
            return bad("hub.ring_capacity must be at least 1024".into());
        }
        if self.hub.client_timeout_s <= self.hub.ping_interval_s {
            return bad("hub.client_timeout_s must exceed hub.ping_interval_s".into());
        }
        if self.mqtt.families.is_empty() {
            return bad("mqtt.families must name at least one family".into());
        }
        if self.database.batch_rows == 0
            || self.database.flush_ms == 0
            || self.database.flush_ms > 200
        {
            return bad(
                "database.batch_rows must be positive and database.flush_ms 1..=200".into(),
            );
        }
        if self.database.telemetry_retention_days < 1
            || self.database.retention_days < 1
            || self.database.maintenance_every_s == 0
        {
            return bad("database.telemetry_retention_days, database.retention_days and database.maintenance_every_s must be positive".into());
        }
        for (name, v) in [
            ("http.head_timeout_s", self.http.head_timeout_s),
            ("http.body_timeout_s", self.http.body_timeout_s),
        ] {
            if !(1..=300).contains(&v) {
                return bad(format!("{name} must be 1..=300"));
            }
        }
        if !(1..=300).contains(&self.runtime.shutdown_grace_s) {
            return bad("runtime.shutdown_grace_s must be 1..=300".into());
        }
        for (name, nets) in [
            (
                "http.anonymous_wall_networks",
                &self.http.anonymous_wall_networks,
            ),
            ("http.trusted_proxies", &self.http.trusted_proxies),
        ] {
            for n in nets {
                if n.parse::<ipnet::IpNet>().is_err() {
                    return bad(format!(
                        "{name}: {n:?} is not a network in CIDR form (e.g. \"10.20.0.0/16\")"
                    ));
                }
            }
        }
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            return bad("http.tls_cert and http.tls_key go together".into());
        }
        if self.auth.idle_timeout_min == 0
            || self.auth.absolute_timeout_h == 0
            || self.auth.display_session_days == 0
        {
            return bad("auth.idle_timeout_min, auth.absolute_timeout_h and auth.display_session_days must be positive".into());
        }
        if !(1..=3600).contains(&self.auth.session_recheck_s) {
            return bad("auth.session_recheck_s must be 1..=3600".into());
        }
        if self.ingest.http_per_minute == 0 || self.ingest.http_burst == 0 {
            return bad("ingest.http_per_minute and ingest.http_burst must be positive".into());
        }
        if self.auth.actions_per_minute == 0 || self.auth.actions_burst == 0 {
            return bad("auth.actions_per_minute and auth.actions_burst must be positive".into());
        }
        let d = &self.dispatch;
        if d.dispatch_target_s.contains(&0)
            || d.unit_dispatched_s == 0
            || d.unit_en_route_s == 0
            || d.unit_on_scene_s == 0
        {
            return bad("dispatch targets must be positive seconds".into());
        }
        self.traffic.check().map_err(ConfigError::Invalid)?;
        self.alerts.check().map_err(ConfigError::Invalid)?;
        if self.runtime.worker_threads > 256 {
            return bad("runtime.worker_threads must be 0..=256 (0: one per core)".into());
        }
        if let Some(a) = self.sim.accel {
            if !(a.is_finite() && (0.1..=10_000.0).contains(&a)) {
                return bad("sim.accel must be 0.1..=10000".into());
            }
        }
        Ok(())
    }
}
