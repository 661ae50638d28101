//! Kendali: a real-time city operations platform, the software behind a
//! city's command room (ruang kendali).
//!
//! # Layout, in data-flow order
//! - [`contract`]: the bus contract v1 (topics, payloads, validation, JSON Schemas).
//! - [`domain`]: the city's entities and rules (a call and its lifecycle, local time); no I/O.
//! - [`charts`]: history charts as SVG (plotters), for the wall and reports.
//! - [`bus`]: MQTT 3.1.1/5 client over rumqttc, and the embedded broker.
//! - [`ingest`]: the poll loop: decode, validate, dead-letter.
//! - [`state`]: the task that owns the live city, and the updates it emits (its fan-out).
//! - [`store`]: keeps what matters and acknowledges QoS 1 messages after it is kept.
//! - [`hub`]: websocket fan-out: snapshots, deltas, resume, slow clients.
//! - [`alerts`]: the alert engine: rules per city, ISA-18.2 lifecycle, transitions on the bus.
//! - [`traffic`]: the traffic desk: leases' reverts, automatic extensions, per-junction limits.
//! - [`report`]: the shift handover report (figures from the store's rows, printable HTML).
//! - [`identity`]: users, roles, sessions, display tokens, the hash-chained audit.
//! - [`web`]: HTTP routes, the `/ws` upgrade, embedded screens.
//! - [`sensors`]: the simulated city (from `sensors/`), driven by `scenarios/`.
//! - [`app`]: wires the stages together; [`config`]: typed settings.
//! - [`bench`]: `kendali bench`, the end-to-end benchmark.
//! - [`doctor`]: `kendali doctor`, the installation's checks, each problem with its fix.

pub mod alerts;
pub mod app;
pub mod bench;
pub mod bus;
pub mod charts;
pub mod config;
pub mod contract;
pub mod doctor;
pub mod domain;
pub mod hub;
pub mod identity;
pub mod ingest;
pub mod metrics;
pub mod report;
#[path = "../sensors/mod.rs"]
pub mod sensors;
pub mod state;
pub mod store;
pub mod traffic;
pub mod web;
