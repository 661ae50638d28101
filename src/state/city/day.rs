//! What the day's events built in a [`CityState`], as a replay checkpoint
//! stores it (`replay_checkpoints`): the calls, the day's counters, the
//! feeds, the event ids seen and the complaints tracked to their OPD.
//!
//! Junctions, units, KPIs, commands and alerts are not in it: a replay reads
//! each one's newest from the store, as a restart does. The day's events
//! are what takes a rebuild long (a day of 50,000 call events read and
//! applied in about a second), and a checkpoint holds what they built.

use super::*;

/// The day part of a state, at one moment (see the module doc).
#[derive(Debug, Serialize, Deserialize)]
pub struct DayPart {
    calls: Vec<StoredCall>,
    closed_calls: VecDeque<String>,
    call_order: VecDeque<String>,
    calls_evicted: u64,
    counters: Vec<StoredCounters>,
    feeds: Vec<StoredFeed>,
    /// Event ids seen, oldest first (the duplicate window).
    seen: VecDeque<Uuid>,
    /// Complaint key, city, OPD.
    complaint_opd: Vec<(String, String, String)>,
    complaint_order: VecDeque<String>,
}

/// A call as the screens get it, and what they do not.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCall {
    key: String,
    call: Call,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kept_apart: Vec<String>,
}

/// A city's counters as the screens get them, and each line's answer times.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCounters {
    counters: Counters,
    answer_times: BTreeMap<String, crate::domain::AnswerTimesParts>,
}

/// A feed as the screens get it, and what they do not.
#[derive(Debug, Serialize, Deserialize)]
struct StoredFeed {
    key: String,
    feed: Feed,
    emitted_at: DateTime<Utc>,
    district: Option<String>,
}

impl DayPart {
    /// Calls held.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }
}

impl CityState {
    /// The day part of this state (see the module doc).
    pub fn day_part(&self) -> DayPart {
        DayPart {
            calls: self
                .calls
                .iter()
                .map(|(key, call)| StoredCall {
                    key: key.clone(),
                    call: call.clone(),
                    kept_apart: call.kept_apart.clone(),
                })
                .collect(),
            closed_calls: self.closed_calls.clone(),
            call_order: self.call_order.clone(),
            calls_evicted: self.calls_evicted,
            counters: self
                .counters
                .values()
                .map(|c| StoredCounters {
                    counters: c.clone(),
                    answer_times: c
                        .lines
                        .iter()
                        .map(|(line, l)| (line.clone(), l.answer_times.parts()))
                        .collect(),
                })
                .collect(),
            feeds: self
                .feeds
                .iter()
                .map(|(key, f)| StoredFeed {
                    key: key.clone(),
                    feed: f.clone(),
                    emitted_at: f.emitted_at,
                    district: f.district.as_deref().map(str::to_owned),
                })
                .collect(),
            seen: self.seen_order.clone(),
            complaint_opd: self
                .complaint_opd
                .iter()
                .map(|(k, (city, opd))| (k.clone(), city.clone(), opd.clone()))
                .collect(),
            complaint_order: self.complaint_order.clone(),
        }
    }

    /// This state with `day`'s part in place of its own, and the updates
    /// of what it holds (each call, counters and feed), as the state that
    /// built it last sent them.
    pub fn with_day_part(mut self, day: DayPart) -> (CityState, Vec<Update>) {
        let mut out = Vec::with_capacity(day.calls.len() + day.feeds.len() + 4);
        self.calls = day
            .calls
            .into_iter()
            .map(|s| {
                let mut call = s.call;
                call.kept_apart = s.kept_apart;
                out.push(call_update(&call.city, &s.key, &call, call.rx));
                (s.key, call)
            })
            .collect();
        self.closed_calls = day.closed_calls;
        self.call_order = day.call_order;
        self.calls_evicted = day.calls_evicted;
        self.counters = day
            .counters
            .into_iter()
            .map(|s| {
                let mut c = s.counters;
                for (line, parts) in s.answer_times {
                    if let Some(l) = c.lines.get_mut(&line) {
                        l.answer_times = AnswerTimes::from_parts(parts);
                    }
                }
                (c.city.clone(), c)
            })
            .collect();
        let cities: Vec<String> = self.counters.keys().cloned().collect();
        for city in cities {
            out.push(self.counters_update(&city, Utc::now()));
        }
        self.feeds = day
            .feeds
            .into_iter()
            .map(|s| {
                let mut f = s.feed;
                f.emitted_at = s.emitted_at;
                f.district = s.district.map(Arc::from);
                out.push(feed_update(&f, f.emitted_at));
                (s.key, f)
            })
            .collect();
        self.seen_events = day.seen.iter().copied().collect();
        self.seen_order = day.seen;
        self.complaint_opd = day
            .complaint_opd
            .into_iter()
            .map(|(k, city, opd)| (k, (city, opd)))
            .collect();
        self.complaint_order = day.complaint_order;
        (self, out)
    }
}
