//! Where the state's updates go: one fan-out, so the state does not know
//! who listens. Each output is a bounded channel with the kinds of update
//! it wants; an update is shared (`Arc`) between outputs, never copied.
//!
//! The hub takes every update. The alert engine takes the changes its
//! rules look at: not a junction's routine figures (conditions unchanged),
//! not the junctions' freshness refreshes (their silence is the
//! junction's `comm_loss` condition), not the events and counters.
//!
//! Sending waits for room, as the hub's input always did: an output that
//! lags slows the state, and through it ingest, rather than losing an
//! update (the hub conflates for the screens; the alert engine is cheap).
//! An output that has stopped is left behind; the state stops only when
//! the hub has.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Update, UpdateKind};
use crate::contract::Family;

/// One consumer of the state's updates.
pub struct Output {
    pub name: &'static str,
    pub tx: mpsc::Sender<Arc<Update>>,
    pub wants: fn(&Update) -> bool,
    /// The state stops when a required output has stopped (the hub).
    pub required: bool,
}

/// The state's outputs.
#[derive(Default)]
pub struct FanOut {
    outputs: Vec<Output>,
}

/// The hub takes everything.
pub fn everything(_: &Update) -> bool {
    true
}

/// What the alert engine's rules look at.
pub fn rule_inputs(u: &Update) -> bool {
    match u.kind {
        UpdateKind::Intersection => !u.routine,
        UpdateKind::Feed => u.tags.family != Some(Family::Atcs),
        UpdateKind::Call
        | UpdateKind::Unit
        | UpdateKind::Kpi
        | UpdateKind::Command
        | UpdateKind::Alert => true,
        UpdateKind::Counters | UpdateKind::CallEvent | UpdateKind::AppEvent => false,
    }
}

impl FanOut {
    pub fn new() -> FanOut {
        FanOut::default()
    }

    /// A fan-out to the hub alone (tests, the bench's stage).
    pub fn hub(tx: mpsc::Sender<Arc<Update>>) -> FanOut {
        FanOut::new().with(Output {
            name: "hub",
            tx,
            wants: everything,
            required: true,
        })
    }

    pub fn with(mut self, output: Output) -> FanOut {
        self.outputs.push(output);
        self
    }

    /// Sends `u` to every output that wants it. False once a required
    /// output has stopped (shutdown).
    pub async fn send(&mut self, u: Update) -> bool {
        let u = Arc::new(u);
        let mut alive = true;
        let mut gone = None;
        for (i, o) in self.outputs.iter().enumerate() {
            if !(o.wants)(&u) {
                continue;
            }
            if o.tx.send(u.clone()).await.is_err() {
                if o.required {
                    alive = false;
                } else {
                    gone = Some(i);
                }
            }
        }
        if let Some(i) = gone {
            let o = self.outputs.remove(i);
            tracing::warn!(output = o.name, "a consumer of the state's updates stopped");
        }
        alive
    }
}
