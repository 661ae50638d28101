//! Integration tests of Kendali against the real things: Mosquitto and the
//! embedded broker, PostgreSQL, a real websocket client. One test binary (one
//! link on a 2-core machine); one module per stage.

mod support;

mod bench;
mod contract;
mod docs;
mod durability;
mod hub;
mod ingest;
mod scenario;
mod store;
mod wall;
