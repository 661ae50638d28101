//! A junction's conditions as a traffic officer reads them, and the rules
//! that act on them: congestion in the SCATS sense (a degree of saturation
//! above a threshold sustained over whole cycles, not one sample), detector
//! faults (reported, stuck or flickering), a controller flashing or dark;
//! the green extension Kendali proposes for a congested approach; the
//! budget that bounds automatic extensions; the loudspeaker templates.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{ControllerMode, IntersectionState};

/// What flags a junction's conditions (`[traffic]` settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficSettings {
    /// A command with no answer from its controller this long is shown timed out, seconds.
    pub ack_timeout_s: u64,
    /// SCATS: an approach is congested when its degree of saturation stays
    /// above this for `congestion_cycles` whole cycles.
    pub congestion_saturation: f64,
    pub congestion_cycles: u32,
    /// A detector whose non-zero count does not change over this many state
    /// messages is stuck.
    pub detector_stuck_samples: u32,
    /// A detector that goes bad or good this many times within
    /// `detector_flicker_window_s` is flickering.
    pub detector_flicker_changes: u32,
    pub detector_flicker_window_s: u64,
    /// Lease of `set_plan` and `set_mode` when the officer gives none, and
    /// the longest allowed, seconds.
    pub lease_default_s: u64,
    pub lease_max_s: u64,
    /// The longest green extension an officer may give at once, seconds.
    pub extend_max_s: u32,
    /// Commands per intersection per minute, all officers together (beyond: 429).
    pub commands_per_intersection_per_min: u32,
    /// Automatic mode: at most this many seconds of extension an hour per
    /// intersection, at least this long between two extensions.
    pub auto_max_s_per_hour: u32,
    pub auto_min_gap_s: u64,
    /// Intersections (`city/intersection`) in automatic mode from the start.
    pub auto_intersections: Vec<String>,
    /// A green corridor's hold per junction when the officer gives none, seconds.
    pub corridor_s: u64,
    /// Units sent to calls of this priority or more urgent get a green
    /// corridor by themselves (0: only when an officer gives one).
    pub corridor_priority: u8,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        TrafficSettings {
            ack_timeout_s: 10,
            // SCATS's own operators read DS above 0.9 as near capacity; 0.95
            // over three cycles is a queue that no longer clears.
            congestion_saturation: 0.95,
            congestion_cycles: 3,
            // About a minute of once-a-second states with the very same count.
            detector_stuck_samples: 60,
            detector_flicker_changes: 4,
            detector_flicker_window_s: 300,
            lease_default_s: 900,
            lease_max_s: 4 * 3600,
            extend_max_s: 60,
            commands_per_intersection_per_min: 6,
            // Cirebon's ATCS extends by itself under congestion; two minutes
            // an hour at a junction keeps it from starving the cross streets.
            auto_max_s_per_hour: 120,
            auto_min_gap_s: 120,
            auto_intersections: Vec::new(),
            // An ambulance crosses a city centre in a few minutes; the hold
            // ends earlier at each junction once it has passed.
            corridor_s: 300,
            corridor_priority: 0,
        }
    }
}

impl TrafficSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=600).contains(&self.ack_timeout_s) {
            return Err("traffic.ack_timeout_s must be 1..=600".into());
        }
        if !(self.congestion_saturation.is_finite()
            && (0.5..=3.0).contains(&self.congestion_saturation))
        {
            return Err("traffic.congestion_saturation must be 0.5..=3".into());
        }
        if self.congestion_cycles == 0
            || self.detector_stuck_samples < 2
            || self.detector_flicker_changes < 2
        {
            return Err("traffic.congestion_cycles must be positive, detector_stuck_samples and detector_flicker_changes at least 2".into());
        }
        if !(10..=86_400).contains(&self.lease_default_s)
            || !(10..=86_400).contains(&self.lease_max_s)
            || self.lease_default_s > self.lease_max_s
        {
            return Err("traffic.lease_default_s and lease_max_s must be 10..=86400, the default at most the max".into());
        }
        if !(1..=120).contains(&self.extend_max_s) || self.commands_per_intersection_per_min == 0 {
            return Err("traffic.extend_max_s must be 1..=120 and commands_per_intersection_per_min positive".into());
        }
        if self.corridor_priority > 4 {
            return Err("traffic.corridor_priority must be 0..=4 (0: off)".into());
        }
        if !(10..=self.lease_max_s).contains(&self.corridor_s) {
            return Err("traffic.corridor_s must be 10..=lease_max_s".into());
        }
        for k in &self.auto_intersections {
            if k.split('/').count() != 2 {
                return Err(format!(
                    "traffic.auto_intersections: {k:?} is not \"city/intersection\""
                ));
            }
        }
        Ok(())
    }
}

/// A flagged condition of a junction, with since when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// `congested`, `detector_fault`, `detector_stuck`, `detector_flicker`,
    /// `comm_loss`, `flashing` or `off`.
    pub kind: &'static str,
    /// The approach, for the per-approach kinds.
    pub approach: Option<Arc<str>>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub since: DateTime<Utc>,
}

/// A green extension Kendali proposes for a congested approach.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    pub approach: Arc<str>,
    pub seconds: u32,
    /// The figures it was computed from.
    pub saturation: f64,
    pub queue_m: f64,
}

/// Per-approach memory behind the conditions.
#[derive(Clone, Debug, Default)]
struct ApproachWatch {
    id: Arc<str>,
    /// Since when the saturation has stayed above the threshold.
    over_since: Option<DateTime<Utc>>,
    congested_since: Option<DateTime<Utc>>,
    fault_since: Option<DateTime<Utc>>,
    last_flow: f64,
    same_flow: u32,
    stuck_since: Option<DateTime<Utc>>,
    last_ok: Option<bool>,
    flips: VecDeque<DateTime<Utc>>,
    flicker_since: Option<DateTime<Utc>>,
}

/// What Kendali remembers of one junction's states to flag its conditions.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    approaches: Vec<ApproachWatch>,
    mode_since: Option<(ControllerMode, DateTime<Utc>)>,
    comm_loss_since: Option<DateTime<Utc>>,
    /// The conditions as last published (shared with the entity's snapshots).
    current: Arc<[Condition]>,
}

impl Watch {
    /// Takes one state message (in `ts` order); returns the conditions when
    /// they changed.
    pub fn observe(
        &mut self,
        s: &IntersectionState,
        rules: &TrafficSettings,
    ) -> Option<Arc<[Condition]>> {
        let ts = s.ts.with_timezone(&Utc);
        let before = self.shape();
        self.comm_loss_since = None;
        if self.mode_since.is_none_or(|(m, _)| m != s.mode) {
            self.mode_since = Some((s.mode, ts));
        }
        // The approaches as the controller lists them now.
        let relisted = self.approaches.len() != s.approaches.len()
            || self
                .approaches
                .iter()
                .zip(&s.approaches)
                .any(|(w, a)| *w.id != *a.id);
        if relisted {
            self.approaches = s
                .approaches
                .iter()
                .map(|a| ApproachWatch {
                    id: a.id.as_str().into(),
                    ..Default::default()
                })
                .collect();
        }
        let signalising = matches!(
            s.mode,
            ControllerMode::Adaptive | ControllerMode::Fixed | ControllerMode::Manual
        );
        let sustained = Duration::milliseconds(
            (s.cycle_s * 1000.0) as i64 * i64::from(rules.congestion_cycles),
        );
        let window = Duration::seconds(rules.detector_flicker_window_s as i64);
        for (w, a) in self.approaches.iter_mut().zip(&s.approaches) {
            // Congestion: above the threshold over whole cycles. A sample at
            // or below it starts the count again.
            if signalising && a.saturation > rules.congestion_saturation {
                let since = *w.over_since.get_or_insert(ts);
                if w.congested_since.is_none() && s.cycle_s > 0.0 && ts - since >= sustained {
                    w.congested_since = Some(since);
                }
            } else {
                w.over_since = None;
                w.congested_since = None;
            }
            // A detector the controller reports faulty.
            if a.detector_ok {
                w.fault_since = None;
            } else {
                w.fault_since.get_or_insert(ts);
            }
            // Flickering: bad and good again and again.
            if w.last_ok.is_some_and(|ok| ok != a.detector_ok) {
                w.flips.push_back(ts);
            }
            w.last_ok = Some(a.detector_ok);
            while w.flips.front().is_some_and(|t| ts - *t > window) {
                w.flips.pop_front();
            }
            if w.flips.len() >= rules.detector_flicker_changes as usize {
                w.flicker_since.get_or_insert(w.flips[0]);
            } else if w.flips.is_empty() {
                w.flicker_since = None;
            }
            // Stuck: the same non-zero count from a detector said to be good.
            if a.detector_ok && a.flow_vph > 0.0 && a.flow_vph == w.last_flow {
                w.same_flow += 1;
                if w.same_flow + 1 >= rules.detector_stuck_samples {
                    w.stuck_since.get_or_insert(ts);
                }
            } else {
                w.same_flow = 0;
                w.stuck_since = None;
            }
            w.last_flow = a.flow_vph;
        }
        // A since-time is set once, when its condition starts: the list
        // changes only when the set of conditions does (most messages).
        if relisted || self.shape() != before {
            self.publish()
        } else {
            None
        }
    }

    /// Which conditions hold, as bits: the mode's (flashing, off), silence,
    /// then four per approach (at most 16 approaches: 67 bits).
    fn shape(&self) -> u128 {
        let mut bits: u128 = match self.mode_since {
            Some((ControllerMode::Flashing, _)) => 1,
            Some((ControllerMode::Off, _)) => 2,
            _ => 0,
        };
        bits |= u128::from(self.comm_loss_since.is_some()) << 2;
        for (i, w) in self.approaches.iter().enumerate().take(31) {
            let a = u128::from(w.congested_since.is_some())
                | u128::from(w.fault_since.is_some()) << 1
                | u128::from(w.stuck_since.is_some()) << 2
                | u128::from(w.flicker_since.is_some()) << 3;
            bits |= a << (3 + 4 * i);
        }
        bits
    }

    /// The controller has gone silent (its feed turned stale) or spoken again.
    pub fn silent(&mut self, since: Option<DateTime<Utc>>) -> Option<Arc<[Condition]>> {
        self.comm_loss_since = since;
        self.publish()
    }

    pub fn conditions(&self) -> &Arc<[Condition]> {
        &self.current
    }

    fn publish(&mut self) -> Option<Arc<[Condition]>> {
        let mut out = Vec::new();
        if let Some(since) = self.comm_loss_since {
            out.push(Condition {
                kind: "comm_loss",
                approach: None,
                since,
            });
        }
        match self.mode_since {
            Some((ControllerMode::Flashing, since)) => out.push(Condition {
                kind: "flashing",
                approach: None,
                since,
            }),
            Some((ControllerMode::Off, since)) => out.push(Condition {
                kind: "off",
                approach: None,
                since,
            }),
            _ => {}
        }
        for w in &self.approaches {
            for (kind, since) in [
                ("congested", w.congested_since),
                ("detector_fault", w.fault_since),
                ("detector_stuck", w.stuck_since),
                ("detector_flicker", w.flicker_since),
            ] {
                if let Some(since) = since {
                    out.push(Condition {
                        kind,
                        approach: Some(w.id.clone()),
                        since,
                    });
                }
            }
        }
        if *out == *self.current {
            return None;
        }
        self.current = out.into();
        Some(self.current.clone())
    }
}

/// The green extension for each congested approach: the extra green that
/// would bring its degree of saturation back to 0.9 (saturation falls as
/// green grows), plus the time to discharge a queue past what a cycle
/// clears, in steps of 5 s within 5..=`max_s`.
pub fn suggestions(s: &IntersectionState, conditions: &[Condition], max_s: u32) -> Vec<Suggestion> {
    /// Metres of queue per vehicle in a lane, and seconds to discharge one.
    const METRES_PER_VEHICLE: f64 = 7.0;
    const HEADWAY_S: f64 = 2.0;
    conditions
        .iter()
        .filter(|c| c.kind == "congested")
        .filter_map(|c| {
            let id = c.approach.as_ref()?;
            let a = s.approaches.iter().find(|a| *a.id == **id)?;
            let green = a.green_s.max(5.0);
            let for_saturation = green * (a.saturation / 0.9 - 1.0).max(0.0);
            let for_queue = (a.queue_m / METRES_PER_VEHICLE * HEADWAY_S - green).max(0.0) / 4.0;
            let raw = for_saturation + for_queue;
            let seconds = ((raw / 5.0).round() * 5.0).clamp(5.0, f64::from(max_s.max(5))) as u32;
            Some(Suggestion {
                approach: id.clone(),
                seconds,
                saturation: a.saturation,
                queue_m: a.queue_m,
            })
        })
        .collect()
}

/// The automatic mode's bound for one junction: at most `max_s_per_hour`
/// seconds of extension in any hour, at least `min_gap` between two.
#[derive(Clone, Debug, Default)]
pub struct AutoBudget {
    given: VecDeque<(DateTime<Utc>, u32)>,
}

impl AutoBudget {
    /// The seconds an automatic extension may give now (0: none), of `want`.
    pub fn allows(&mut self, now: DateTime<Utc>, want: u32, rules: &TrafficSettings) -> u32 {
        while self
            .given
            .front()
            .is_some_and(|(t, _)| now - *t >= Duration::hours(1))
        {
            self.given.pop_front();
        }
        if self
            .given
            .back()
            .is_some_and(|(t, _)| now - *t < Duration::seconds(rules.auto_min_gap_s as i64))
        {
            return 0;
        }
        let used: u32 = self.given.iter().map(|(_, s)| s).sum();
        let left = rules.auto_max_s_per_hour.saturating_sub(used);
        if left < 5 {
            return 0;
        }
        want.min(left)
    }

    pub fn spend(&mut self, now: DateTime<Utc>, seconds: u32) {
        self.given.push_back((now, seconds));
    }

    /// Seconds given in the hour before `now`.
    pub fn used(&self, now: DateTime<Utc>) -> u32 {
        self.given
            .iter()
            .filter(|(t, _)| now - *t < Duration::hours(1))
            .map(|(_, s)| s)
            .sum()
    }
}

/// A junction a green corridor may cross: its key, position and approaches (id, name).
pub struct CorridorJunction<'a> {
    pub key: &'a str,
    pub at: (f64, f64),
    pub approaches: &'a [(String, String)],
}

/// A junction on a corridor: the approach the vehicle comes on (none when
/// no approach faces its way), and how far along the route it lies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorridorStop {
    pub intersection: String,
    pub approach: Option<String>,
    pub along_m: f64,
}

/// The junctions within `within_m` of `path` (`[lat, lon]` points, from the
/// vehicle to its destination), in the order it meets them, each with the
/// approach it arrives on: the one named for the compass side it comes
/// from (`utara`/`north`/`N` for a vehicle coming from the north, and so
/// on), as Indonesian ATCS names approaches.
pub fn corridor(
    path: &[[f64; 2]],
    junctions: &[CorridorJunction<'_>],
    within_m: f64,
) -> Vec<CorridorStop> {
    /// How far back along the route the arrival direction is read.
    const LOOK_BACK_M: f64 = 50.0;
    let mut stops: Vec<CorridorStop> = junctions
        .iter()
        .filter_map(|j| {
            let (d, along) = nearest_on(path, j.at)?;
            if d > within_m {
                return None;
            }
            let from = point_at(path, (along - LOOK_BACK_M).max(0.0));
            let approach = (crate::domain::route::metres(from, j.at) > 5.0)
                .then(|| facing(j.approaches, bearing(j.at, from)))
                .flatten();
            Some(CorridorStop {
                intersection: j.key.to_owned(),
                approach,
                along_m: along,
            })
        })
        .collect();
    stops.sort_by(|a, b| a.along_m.total_cmp(&b.along_m));
    stops
}

/// Metres east and north of `o`, near it.
fn local(o: (f64, f64), p: (f64, f64)) -> (f64, f64) {
    let x = (p.1 - o.1) * 111_320.0 * o.0.to_radians().cos();
    let y = (p.0 - o.0) * 110_540.0;
    (x, y)
}

/// The distance from `p` to the path and how far along the path its nearest point is.
fn nearest_on(path: &[[f64; 2]], p: (f64, f64)) -> Option<(f64, f64)> {
    let mut best: Option<(f64, f64)> = None;
    let mut walked = 0.0;
    for w in path.windows(2) {
        let (a, b) = ((w[0][0], w[0][1]), (w[1][0], w[1][1]));
        let (bx, by) = local(a, b);
        let (px, py) = local(a, p);
        let len2 = bx * bx + by * by;
        let t = if len2 > 0.0 {
            ((px * bx + py * by) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (dx, dy) = (px - t * bx, py - t * by);
        let d = (dx * dx + dy * dy).sqrt();
        let len = len2.sqrt();
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, walked + t * len));
        }
        walked += len;
    }
    best
}

/// The point `m` metres along the path.
fn point_at(path: &[[f64; 2]], m: f64) -> (f64, f64) {
    let mut left = m;
    for w in path.windows(2) {
        let (a, b) = ((w[0][0], w[0][1]), (w[1][0], w[1][1]));
        let (bx, by) = local(a, b);
        let len = (bx * bx + by * by).sqrt();
        if left <= len && len > 0.0 {
            let t = left / len;
            return (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
        }
        left -= len;
    }
    path.last().map_or((0.0, 0.0), |p| (p[0], p[1]))
}

/// Compass bearing from `a` to `b`, degrees (0 north, 90 east).
fn bearing(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (x, y) = local(a, b);
    x.atan2(y).to_degrees().rem_euclid(360.0)
}

/// The approach named for the side at `bearing` from the junction.
fn facing(approaches: &[(String, String)], bearing: f64) -> Option<String> {
    const SIDES: [(&[&str], &[&str]); 4] = [
        (&["utara", "north"], &["n", "u"]),
        (&["timur", "east"], &["e", "t"]),
        (&["selatan", "south"], &["s"]),
        (&["barat", "west"], &["w", "b"]),
    ];
    let (words, letters) = SIDES[((bearing / 90.0).round() as usize) % 4];
    approaches
        .iter()
        .find(|(id, name)| {
            let (id, name) = (id.to_lowercase(), name.to_lowercase());
            letters.contains(&id.as_str())
                || words
                    .iter()
                    .any(|w| id.contains(w) || name.contains(&format!("({w})")))
        })
        .map(|(id, _)| id.clone())
}

/// A loudspeaker warning the officer picks by id; `{name}` is the junction's name.
pub struct Announcement {
    pub id: &'static str,
    pub id_text: &'static str,
    pub en_text: &'static str,
}

/// The warnings Indonesian ATCS rooms give drivers at a junction.
pub const ANNOUNCEMENTS: &[Announcement] = &[
    Announcement {
        id: "stop_line",
        id_text: "Perhatian pengendara di {name}: harap berhenti di belakang garis stop.",
        en_text: "Attention drivers at {name}: please stop behind the stop line.",
    },
    Announcement {
        id: "keep_box_clear",
        id_text: "Perhatian pengendara di {name}: jangan berhenti di tengah persimpangan.",
        en_text: "Attention drivers at {name}: do not stop inside the junction.",
    },
    Announcement {
        id: "congestion_ahead",
        id_text: "Perhatian: kepadatan lalu lintas di {name}. Harap bersabar dan ikuti arahan petugas.",
        en_text: "Attention: heavy traffic at {name}. Please be patient and follow the officers' directions.",
    },
    Announcement {
        id: "emergency_vehicle",
        id_text: "Perhatian: kendaraan darurat akan melintas di {name}. Beri jalan.",
        en_text: "Attention: an emergency vehicle is coming through {name}. Make way.",
    },
    Announcement {
        id: "signal_fault",
        id_text: "Perhatian: lampu lalu lintas di {name} sedang gangguan. Hati-hati dan utamakan keselamatan.",
        en_text: "Attention: the traffic lights at {name} are out of order. Take care.",
    },
    Announcement {
        id: "no_street_vendors",
        id_text: "Perhatian: dilarang berjualan dan mengamen di persimpangan {name}.",
        en_text: "Attention: no street vending at the {name} junction.",
    },
];

/// The words of template `id` for junction `name` (Indonesian: the language
/// drivers hear), or `None` for an unknown template.
pub fn announcement(id: &str, name: &str) -> Option<String> {
    ANNOUNCEMENTS
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.id_text.replace("{name}", name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ApproachState, PhaseLabel};

    fn state(sec: i64, sat: f64, flow: f64, ok: bool, mode: ControllerMode) -> IntersectionState {
        IntersectionState {
            ts: (chrono::DateTime::parse_from_rfc3339("2026-12-06T08:00:00+07:00").unwrap()
                + Duration::seconds(sec)),
            intersection: "x".into(),
            mode,
            plan: "pagi".into(),
            cycle_s: 100.0,
            phase: PhaseLabel::new("A"),
            phase_elapsed_s: 0.0,
            approaches: vec![ApproachState {
                id: "utara".into(),
                green_s: 30.0,
                flow_vph: flow,
                queue_m: 140.0,
                saturation: sat,
                detector_ok: ok,
            }],
        }
    }

    fn kinds(c: &[Condition]) -> Vec<&'static str> {
        c.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn congestion_needs_the_threshold_held_over_whole_cycles_not_one_sample() {
        let rules = TrafficSettings::default();
        let mut w = Watch::default();
        w.observe(
            &state(0, 1.1, 1000.0, true, ControllerMode::Adaptive),
            &rules,
        );
        // One sample below breaks the run.
        w.observe(
            &state(150, 0.9, 1001.0, true, ControllerMode::Adaptive),
            &rules,
        );
        for t in (160..=450).step_by(10) {
            w.observe(
                &state(t, 1.0, 1000.0 + t as f64, true, ControllerMode::Adaptive),
                &rules,
            );
        }
        assert!(
            kinds(w.conditions()).is_empty(),
            "290 s < 3 cycles of 100 s"
        );
        let c = w
            .observe(
                &state(460, 1.0, 2000.0, true, ControllerMode::Adaptive),
                &rules,
            )
            .expect("changed");
        assert_eq!(kinds(&c), ["congested"]);
        assert_eq!(
            c[0].since,
            state(160, 0.0, 0.0, true, ControllerMode::Adaptive).ts
        );
        let s = suggestions(
            &state(460, 1.0, 2000.0, true, ControllerMode::Adaptive),
            &c,
            60,
        );
        assert_eq!(s.len(), 1);
        assert!(
            (5..=60).contains(&s[0].seconds) && s[0].seconds.is_multiple_of(5),
            "{s:?}"
        );
        // Flashing: no congestion, the mode is the news.
        let c = w
            .observe(
                &state(470, 1.5, 2001.0, true, ControllerMode::Flashing),
                &rules,
            )
            .unwrap();
        assert_eq!(kinds(&c), ["flashing"]);
    }

    #[test]
    fn detectors_are_flagged_faulty_stuck_and_flickering() {
        let rules = TrafficSettings::default();
        let mut w = Watch::default();
        for t in 0..60 {
            w.observe(&state(t, 0.5, 800.0, true, ControllerMode::Fixed), &rules);
        }
        assert_eq!(kinds(w.conditions()), ["detector_stuck"]);
        let mut w = Watch::default();
        for t in 0..8 {
            w.observe(
                &state(t, 0.5, 800.0 + t as f64, t % 2 == 0, ControllerMode::Fixed),
                &rules,
            );
        }
        let k = kinds(w.conditions());
        assert!(
            k.contains(&"detector_flicker") && k.contains(&"detector_fault"),
            "{k:?}"
        );
        assert_eq!(
            w.silent(Some(Utc::now())).map(|c| c[0].kind),
            Some("comm_loss")
        );
    }

    #[test]
    fn the_automatic_budget_holds_its_hourly_limit_and_gap() {
        let rules = TrafficSettings::default();
        let mut b = AutoBudget::default();
        let t0 = Utc::now();
        let mut given = 0;
        for m in 0..60 {
            let now = t0 + Duration::minutes(m);
            let s = b.allows(now, 30, &rules);
            if s > 0 {
                b.spend(now, s);
                given += s;
            }
        }
        assert_eq!(given, 120);
        assert_eq!(b.allows(t0 + Duration::minutes(30), 30, &rules), 0);
        assert_eq!(b.allows(t0 + Duration::minutes(62), 30, &rules), 30);
    }

    #[test]
    fn a_corridor_meets_the_junctions_on_the_way_in_order_on_the_approach_it_comes_on() {
        let arms = |ids: &[&str]| -> Vec<(String, String)> {
            ids.iter()
                .map(|i| (i.to_string(), format!("Jl. X ({i})")))
                .collect()
        };
        let (a, b, off) = (
            arms(&["utara", "selatan", "timur"]),
            arms(&["N", "S"]),
            arms(&["utara", "selatan"]),
        );
        // Northwards along a meridian, then east.
        let path = [[-6.02, 106.0], [-6.00, 106.0], [-6.00, 106.02]];
        let junctions = [
            CorridorJunction {
                key: "k/b",
                at: (-6.0, 106.0),
                approaches: &b,
            },
            CorridorJunction {
                key: "k/a",
                at: (-6.01, 106.0002),
                approaches: &a,
            },
            CorridorJunction {
                key: "k/off",
                at: (-6.01, 106.01),
                approaches: &off,
            },
            CorridorJunction {
                key: "k/c",
                at: (-6.0, 106.01),
                approaches: &a,
            },
        ];
        let stops = corridor(&path, &junctions, 60.0);
        let got: Vec<(&str, Option<&str>)> = stops
            .iter()
            .map(|s| (s.intersection.as_str(), s.approach.as_deref()))
            .collect();
        // Coming from the south at a and b, from the west at c (which has no western arm).
        assert_eq!(
            got,
            [("k/a", Some("selatan")), ("k/b", Some("S")), ("k/c", None)]
        );
    }

    #[test]
    fn announcements_name_the_junction() {
        assert!(announcement("stop_line", "Simpang PCI")
            .unwrap()
            .contains("Simpang PCI"));
        assert!(announcement("nope", "x").is_none());
    }
}
