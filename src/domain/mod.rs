//! The city's entities and rules, with no I/O: a call and its lifecycle,
//! the call-taking indicators, the alerts' lifecycle, travel time on the city's roads, a junction's
//! conditions and the rules acting on them, and the city's local time. State, store, web and the simulator all import
//! them from here (the store used to import `Call` from the state, and the
//! WIB offset was written three times), so no two stages import each other.
//!
//! It builds on the bus contract's types (`crate::contract`, also pure): a
//! call's stages are the contract's call event types.

pub mod alerts;
pub mod call;
pub mod catalogue;
pub mod geometry;
pub mod indicators;
pub mod route;
pub mod time;
pub mod traffic;

pub use call::{agency_for, rank, Call, CallUnit};
pub use indicators::{AnswerTimes, AnswerTimesParts};
pub use time::{wib, wib_date, wib_day_start, Zone, Zones};
