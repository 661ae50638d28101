//! The simulator's agenda: things due at a simulated time (a call reaching its
//! next stage, a unit arriving, an app follow-up, an incident starting),
//! popped in time order. Ties break by insertion order, so a run never
//! depends on heap internals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::services::Chain;

/// Upper bound on pending entries; beyond it new follow-ups are dropped
/// rather than letting a week-long drill grow memory without limit.
pub const MAX_PENDING: usize = 200_000;

#[derive(Debug)]
pub enum Action {
    /// A new call on line index `line`; `surge` names the incident that caused it.
    CallArrival {
        line: usize,
        surge: Option<usize>,
    },
    /// The call's next stage, if its generation still matches.
    Call {
        key: u64,
        gen: u32,
    },
    /// The unit's next transition, if its generation still matches.
    Unit {
        unit: usize,
        gen: u32,
    },
    /// The unit's next scheduled maintenance window.
    Maintenance {
        unit: usize,
    },
    /// A root app event of `spec` for service `service`.
    AppRoot {
        service: usize,
        spec: usize,
    },
    /// A follow-up app event in a case.
    AppFollow(Box<Chain>),
    IncidentStart(usize),
    IncidentEnd(usize),
}

struct Entry {
    at: f64,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub struct Agenda {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Agenda {
    /// Schedules `action` at simulated second `at` (non-finite times are dropped).
    pub fn at(&mut self, at: f64, action: Action) {
        if !at.is_finite() || self.heap.len() >= MAX_PENDING {
            return;
        }
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            action,
        });
    }

    /// The earliest entry due at or before `until`.
    pub fn pop_due(&mut self, until: f64) -> Option<(f64, Action)> {
        if self.heap.peek()?.at > until {
            return None;
        }
        self.heap.pop().map(|e| (e.at, e.action))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut a = Agenda::default();
        a.at(5.0, Action::IncidentStart(1));
        a.at(1.0, Action::IncidentStart(2));
        a.at(5.0, Action::IncidentStart(3));
        a.at(f64::NAN, Action::IncidentStart(4));
        let mut got = vec![];
        while let Some((_, Action::IncidentStart(i))) = a.pop_due(10.0) {
            got.push(i);
        }
        assert_eq!(got, [2, 1, 3]);
        a.at(11.0, Action::IncidentEnd(0));
        assert!(a.pop_due(10.0).is_none());
        assert_eq!(a.len(), 1);
    }
}
