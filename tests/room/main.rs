//! Integration tests of Kendali against the real things: Mosquitto and the
//! embedded broker, PostgreSQL, real websocket clients and headless
//! Chromium. One test binary (one link on a 2-core machine); one module per
//! stage, plus `docs.rs` (the documents against the code).

mod support;

mod acl;
mod alerts;
mod apps;
mod bench;
mod contract;
mod dispatch;
mod docs;
mod doctor;
mod durability;
mod hub;
mod identity;
mod ingest;
mod package;
mod replay;
mod report;
mod scenario;
mod shutdown;
mod store;
mod timescale;
mod traffic;
mod wall;
