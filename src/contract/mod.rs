//! The bus contract, v1: MQTT topics, the JSON payload of every message kind,
//! and the validation that turns raw bytes into trusted values.
//!
//! This is the one definition shared by the ingest loop, the simulator
//! (`sensors/`), `kendali publish` and the JSON Schemas in `contract/schemas/`.
//! It imports no MQTT, web or database crate. The human-readable version is
//! `CONTRACT.md` at the top of the repository.

pub mod alert;
pub mod messages;
pub mod rfc3339;
pub mod schema;
pub mod topic;
pub mod validate;

pub use alert::{Alert, AlertRule, AlertState, AlertTransition};
pub use messages::*;
pub use topic::{Family, Topic, TopicError};
pub use validate::{decode, Limits, RejectReason, Rejection};
