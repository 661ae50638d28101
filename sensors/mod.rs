//! The simulated city: a deterministic stand-in for the field systems a
//! command room listens to. It plays ATCS traffic controllers, the 112 and 119
//! call centres, the emergency fleet and the municipal service applications of
//! one city, as described by a TOML scenario, and produces exactly the bus
//! messages of the contract (`crate::contract`). [`sim::Simulation`] is the
//! pure, seeded core (same scenario, seed and steps give the same bytes);
//! [`runner::run`] drives it in real time; the caller wires it to MQTT.

pub mod atcs;
pub mod calls;
pub mod draw;
pub mod geo;
pub mod runner;
pub mod scenario;
pub mod services;
pub mod sim;
pub mod units;

mod agenda;

pub use runner::run;
pub use scenario::{Scenario, ScenarioError};
pub use sim::{SimStats, Simulation};
