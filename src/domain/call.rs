//! An emergency call (112/119) as the room sees it: the projection of its
//! events, and the lifecycle rules that refuse an event contradicting the
//! call's other stages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::contract::{
    CallCategory, CallEvent, CallEventType, CallLine, Caller, RejectReason, Rejection, Ts,
};

/// The projection of one emergency call, built from its events in `ts` order.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub city: String,
    pub call_id: String,
    pub line: CallLine,
    /// The furthest stage reached (by lifecycle, not by arrival order).
    pub stage: CallEventType,
    pub open: bool,
    /// Source time of each stage seen.
    pub stages: BTreeMap<CallEventType, Ts>,
    pub category: Option<CallCategory>,
    pub priority: Option<u8>,
    pub agency: Option<String>,
    pub unit: Option<String>,
    pub operator: Option<String>,
    pub caller: Option<Caller>,
    /// Seconds from received to answered, once both are known.
    pub answer_s: Option<f64>,
    /// Seconds from received to dispatched, once both are known.
    pub dispatch_s: Option<f64>,
    pub events: u32,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
}

/// Lifecycle rank: a stage of lower rank cannot happen after one of higher rank.
pub fn rank(t: CallEventType) -> u8 {
    use CallEventType::*;
    match t {
        Received => 0,
        Answered | Abandoned => 1,
        Classified => 2,
        Dispatched | Transferred => 3,
        EnRoute => 4,
        OnScene => 5,
        Closed => 6,
    }
}

impl Call {
    /// The call as everyone but dispatchers and supervisors sees it: its
    /// line, category, priority, stages and unit, without the caller.
    pub fn without_personal_data(&self) -> Call {
        Call {
            caller: None,
            ..self.clone()
        }
    }

    /// Refuses an event of this call whose line differs from the call's, or
    /// whose time contradicts a stage already known: a stage of lower rank
    /// after one of higher rank, or the reverse (CONTRACT.md, call lifecycle).
    pub fn check(&self, m: &CallEvent) -> Result<(), Rejection> {
        if self.line != m.line {
            return Err(Rejection::new(
                RejectReason::TopicMismatch,
                format!(
                    "call {} is on line {}, this event says {}",
                    m.call_id,
                    self.line.as_str(),
                    m.line.as_str()
                ),
            ));
        }
        for (stage, ts) in &self.stages {
            let (r_old, r_new) = (rank(*stage), rank(m.kind));
            if (r_old < r_new && *ts > m.ts) || (r_old > r_new && *ts < m.ts) {
                return Err(Rejection::new(
                    RejectReason::LifecycleOutOfOrder,
                    format!(
                        "call {}: {} at {} contradicts {} at {}",
                        m.call_id,
                        m.kind.as_str(),
                        m.ts.to_rfc3339(),
                        stage.as_str(),
                        ts.to_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }
}
