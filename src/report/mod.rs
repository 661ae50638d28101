//! The shift handover report: what a supervisor hands to the next shift.
//! Its figures are computed from the store's rows of the shift alone
//! ([`crate::store::shift::ShiftRows`]) by the pure [`ShiftReport::compute`],
//! so that the same figures can be computed with SQL over the same rows
//! (a test does); [`html`] lays them out as a printable A4 page with
//! charts drawn on the server by plotters. `kendali report` and
//! `/reports/shift` both build it here.

pub mod html;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::contract::{Alert, AlertTransition};
use crate::identity::directory::{AuditQuery, Directory};
use crate::store::shift::{CallRow, CommandRow, ShiftRows};
use crate::store::{StoreError, StoreHandle};

/// Answer-time bands of the distribution, upper bounds in seconds (the
/// last band is everything slower).
pub const ANSWER_BANDS: [f64; 6] = [5.0, 10.0, 15.0, 20.0, 30.0, 60.0];
/// Junctions the report names as the most congested.
pub const TOP_JUNCTIONS: usize = 5;
/// The window alarm management standards judge floods over.
pub const FLOOD_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Calls received in one hour, per line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HourCalls {
    pub hour: DateTime<Utc>,
    pub by_line: BTreeMap<String, u64>,
}

/// The answer times of the shift's answered calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AnswerFigures {
    pub answered: u64,
    pub mean_s: Option<f64>,
    pub within_10s: u64,
    pub within_15s: u64,
    pub within_20s: u64,
    /// The mean of the slowest tenth (EU 112 reporting).
    pub slowest_tenth_mean_s: Option<f64>,
    /// Calls per band of [`ANSWER_BANDS`] (and one more: slower).
    pub bands: Vec<u64>,
}

impl AnswerFigures {
    pub fn share(&self, n: u64) -> Option<f64> {
        (self.answered > 0).then(|| 100.0 * n as f64 / self.answered as f64)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallFigures {
    pub received: u64,
    pub by_line: BTreeMap<String, u64>,
    /// By category (`unclassified` for calls never classified).
    pub by_category: BTreeMap<String, u64>,
    pub per_hour: Vec<HourCalls>,
    pub answer: AnswerFigures,
    pub abandoned: u64,
    pub prank: u64,
    pub ghost: u64,
}

impl CallFigures {
    pub fn share(&self, n: u64) -> Option<f64> {
        (self.received > 0).then(|| 100.0 * n as f64 / self.received as f64)
    }
}

/// One of the most congested junctions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JunctionFigures {
    pub intersection: String,
    /// The mean over the shift of each message's worst DS.
    pub ds_avg: f64,
    pub ds_max: f64,
    /// Per hour, the mean worst DS.
    pub hours: Vec<(DateTime<Utc>, f64)>,
}

/// Per officer (or rule), their commands' outcomes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outcomes {
    pub applied: u64,
    pub rejected: u64,
    /// Never answered by the controller.
    pub unanswered: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CommandFigures {
    pub total: u64,
    pub by_issuer: BTreeMap<String, Outcomes>,
    pub rows: Vec<CommandRow>,
}

/// Alerts of one priority.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PriorityFigures {
    pub raised: u64,
    pub acknowledged: u64,
    /// Seconds from raised to acknowledged, over the acknowledgements.
    pub ack_mean_s: Option<f64>,
    pub ack_max_s: Option<f64>,
}

/// A flood: more than `alerts.flood_per_10_min` alerts raised within 10
/// minutes (overlapping windows merged).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flood {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub raised: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlertFigures {
    pub by_priority: BTreeMap<u8, PriorityFigures>,
    pub floods: Vec<Flood>,
    /// The flood threshold the floods were judged against.
    pub flood_per_10_min: u32,
}

/// What the next shift takes over.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Handover {
    pub open_calls: Vec<CallRow>,
    /// Alerts not back to normal at the shift's end (their newest transition).
    pub live_alerts: Vec<Alert>,
}

/// The audit chain's newest row of the shift.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditMark {
    pub id: i64,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub at: DateTime<Utc>,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShiftReport {
    pub city: String,
    /// The city's local time, which the report's times are shown in.
    pub zone: crate::domain::Zone,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub to: DateTime<Utc>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub generated_at: DateTime<Utc>,
    /// The answer targets the figures are held to, `(within s, share)`.
    pub answer_targets: Vec<(u32, f64)>,
    pub calls: CallFigures,
    pub junctions: Vec<JunctionFigures>,
    pub commands: CommandFigures,
    pub alerts: AlertFigures,
    pub handover: Handover,
    pub audit: Option<AuditMark>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the shift must end after it starts, and last at most 7 days")]
    BadRange,
    #[error("city {0:?} is not a city slug")]
    BadCity(String),
    #[error("reading the shift's rows: {0}")]
    Store(#[from] StoreError),
    #[error("reading the audit: {0}")]
    Audit(String),
}

/// The longest shift a report covers.
pub const MAX_SHIFT: chrono::Duration = chrono::Duration::days(7);

/// What the report needs besides the rows.
pub struct ReportSettings {
    pub answer_targets: Vec<(u32, f64)>,
    pub flood_per_10_min: u32,
    pub zones: crate::domain::Zones,
}

impl ReportSettings {
    pub fn of(s: &crate::config::Settings) -> ReportSettings {
        ReportSettings {
            answer_targets: s.dispatch.answer_standard.targets().to_vec(),
            flood_per_10_min: s.alerts.flood_per_10_min,
            zones: s.cities.zones(),
        }
    }
}

/// Reads the shift's rows and the audit, and computes the report.
pub async fn build(
    store: &StoreHandle,
    directory: &Directory,
    settings: &ReportSettings,
    city: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ShiftReport, ReportError> {
    if to <= from || to - from > MAX_SHIFT {
        return Err(ReportError::BadRange);
    }
    if !crate::contract::topic::is_city_slug(city) {
        return Err(ReportError::BadCity(city.to_owned()));
    }
    let rows = store.shift_rows(city, from, to).await?;
    let last = directory
        .audit_rows(&AuditQuery {
            to: Some(to),
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| ReportError::Audit(e.to_string()))?;
    let audit = last.into_iter().next().map(|r| AuditMark {
        id: r.id,
        at: r.at,
        hash: r.hash,
    });
    Ok(ShiftReport::compute(
        city,
        from,
        to,
        Utc::now(),
        &rows,
        settings,
        audit,
    ))
}

pub(crate) fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(3600), 0).unwrap_or(t)
}

impl ShiftReport {
    /// The figures of the shift from its rows alone.
    pub fn compute(
        city: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        generated_at: DateTime<Utc>,
        rows: &ShiftRows,
        settings: &ReportSettings,
        audit: Option<AuditMark>,
    ) -> ShiftReport {
        ShiftReport {
            city: city.to_owned(),
            zone: settings.zones.of(city),
            from,
            to,
            generated_at,
            answer_targets: settings.answer_targets.clone(),
            calls: calls(&rows.calls),
            junctions: junctions(rows),
            commands: commands(&rows.commands),
            alerts: alerts(&rows.alerts, from, to, settings.flood_per_10_min),
            handover: Handover {
                open_calls: rows.open_calls.clone(),
                live_alerts: live_at_end(&rows.alerts),
            },
            audit,
        }
    }
}

fn calls(rows: &[CallRow]) -> CallFigures {
    let mut f = CallFigures {
        answer: AnswerFigures {
            bands: vec![0; ANSWER_BANDS.len() + 1],
            ..Default::default()
        },
        ..Default::default()
    };
    let mut hours: BTreeMap<DateTime<Utc>, BTreeMap<String, u64>> = BTreeMap::new();
    let mut times = Vec::new();
    for c in rows {
        f.received += 1;
        *f.by_line.entry(c.line.clone()).or_default() += 1;
        let category = c.category.clone().unwrap_or_else(|| "unclassified".into());
        *f.by_category.entry(category).or_default() += 1;
        *hours
            .entry(hour_of(c.received_at))
            .or_default()
            .entry(c.line.clone())
            .or_default() += 1;
        f.abandoned += u64::from(c.stage == "abandoned");
        // A prank: triaged so, or classified in the category `prank`
        // (call centres do one or the other).
        match (c.triage.as_deref(), c.category.as_deref()) {
            (Some("prank"), _) | (None | Some("normal"), Some("prank")) => f.prank += 1,
            (Some("ghost"), _) => f.ghost += 1,
            _ => {}
        }
        if let Some(s) = c.answer_s {
            times.push(s);
            let a = &mut f.answer;
            a.answered += 1;
            a.within_10s += u64::from(s <= 10.0);
            a.within_15s += u64::from(s <= 15.0);
            a.within_20s += u64::from(s <= 20.0);
            let band = ANSWER_BANDS
                .iter()
                .position(|b| s <= *b)
                .unwrap_or(ANSWER_BANDS.len());
            a.bands[band] += 1;
        }
    }
    f.per_hour = hours
        .into_iter()
        .map(|(hour, by_line)| HourCalls { hour, by_line })
        .collect();
    if !times.is_empty() {
        f.answer.mean_s = Some(times.iter().sum::<f64>() / times.len() as f64);
        times.sort_by(f64::total_cmp);
        let k = times.len().div_ceil(10);
        f.answer.slowest_tenth_mean_s =
            Some(times[times.len() - k..].iter().sum::<f64>() / k as f64);
    }
    f
}

/// One junction's hours, summed up.
struct JunctionSum {
    weighted: f64,
    samples: i64,
    max: f64,
    hours: Vec<(DateTime<Utc>, f64)>,
}

fn junctions(rows: &ShiftRows) -> Vec<JunctionFigures> {
    let mut by: BTreeMap<&str, JunctionSum> = BTreeMap::new();
    for h in &rows.junctions {
        let e = by.entry(&h.intersection).or_insert(JunctionSum {
            weighted: 0.0,
            samples: 0,
            max: f64::NEG_INFINITY,
            hours: Vec::new(),
        });
        e.weighted += h.ds_avg * h.samples as f64;
        e.samples += h.samples;
        e.max = e.max.max(h.ds_max);
        e.hours.push((h.hour, h.ds_avg));
    }
    let mut out: Vec<JunctionFigures> = by
        .into_iter()
        .filter(|(_, e)| e.samples > 0)
        .map(|(i, e)| JunctionFigures {
            intersection: i.to_owned(),
            ds_avg: e.weighted / e.samples as f64,
            ds_max: e.max,
            hours: e.hours,
        })
        .collect();
    out.sort_by(|a, b| {
        b.ds_avg
            .total_cmp(&a.ds_avg)
            .then(a.intersection.cmp(&b.intersection))
    });
    out.truncate(TOP_JUNCTIONS);
    out
}

fn commands(rows: &[CommandRow]) -> CommandFigures {
    let mut f = CommandFigures {
        total: rows.len() as u64,
        rows: rows.to_vec(),
        ..Default::default()
    };
    for c in rows {
        let o = f.by_issuer.entry(c.issued_by.clone()).or_default();
        match c.status.as_deref() {
            Some("applied") => o.applied += 1,
            Some("rejected") => o.rejected += 1,
            _ => o.unanswered += 1,
        }
    }
    f
}

fn alerts(rows: &[Alert], from: DateTime<Utc>, to: DateTime<Utc>, flood: u32) -> AlertFigures {
    let mut f = AlertFigures {
        flood_per_10_min: flood,
        ..Default::default()
    };
    let mut ack_times: HashMap<u8, Vec<f64>> = HashMap::new();
    let mut raised_at = Vec::new();
    for a in rows {
        let ts = a.ts.with_timezone(&Utc);
        if ts < from || ts >= to {
            continue;
        }
        let p = f.by_priority.entry(a.priority).or_default();
        match a.transition {
            AlertTransition::Raised => {
                p.raised += 1;
                raised_at.push(ts);
            }
            AlertTransition::Acknowledged => {
                p.acknowledged += 1;
                if let Some(at) = a.acked_at {
                    let s = (at - a.raised_at).num_milliseconds() as f64 / 1000.0;
                    ack_times.entry(a.priority).or_default().push(s.max(0.0));
                }
            }
            _ => {}
        }
    }
    for (p, times) in ack_times {
        let e = f.by_priority.entry(p).or_default();
        e.ack_mean_s = Some(times.iter().sum::<f64>() / times.len() as f64);
        e.ack_max_s = times.iter().copied().reduce(f64::max);
    }
    raised_at.sort();
    // Each raise that makes more than `flood` in the 10 minutes it closes.
    let mut start = 0;
    for end in 0..raised_at.len() {
        while raised_at[end] - raised_at[start] >= FLOOD_WINDOW {
            start += 1;
        }
        let n = (end - start + 1) as u64;
        if n > u64::from(flood) {
            let (s, e) = (raised_at[start], raised_at[end]);
            match f.floods.last_mut() {
                Some(last) if s <= last.end => {
                    last.end = e;
                    last.raised = raised_at
                        .iter()
                        .filter(|t| **t >= last.start && **t <= e)
                        .count() as u64;
                }
                _ => f.floods.push(Flood {
                    start: s,
                    end: e,
                    raised: n,
                }),
            }
        }
    }
    f
}

/// The newest transition of each alert (rows in time order), kept when not normal.
fn live_at_end(rows: &[Alert]) -> Vec<Alert> {
    let mut newest: BTreeMap<uuid::Uuid, &Alert> = BTreeMap::new();
    for a in rows {
        newest.insert(a.alert_id, a);
    }
    let mut out: Vec<Alert> = newest
        .into_values()
        .filter(|a| a.is_live())
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(a.raised_at.cmp(&b.raised_at))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_are_more_than_the_threshold_within_ten_minutes_merged() {
        let t0: DateTime<Utc> = "2026-12-06T01:00:00Z".parse().unwrap();
        let example = crate::contract::messages::example(
            crate::contract::MessageKind::Alert,
            t0.with_timezone(&crate::domain::wib()),
        )
        .1;
        let crate::contract::Message::Alert(base) = example else {
            unreachable!("the example of an alert is an alert")
        };
        let raise = |min: i64| Alert {
            ts: (t0 + chrono::Duration::minutes(min)).with_timezone(&crate::domain::wib()),
            transition: AlertTransition::Raised,
            ..(*base).clone()
        };
        // 4 within 3 minutes (a flood of more than 3), then one alone.
        let rows: Vec<Alert> = [0, 1, 2, 3, 30].into_iter().map(raise).collect();
        let f = alerts(&rows, t0, t0 + chrono::Duration::hours(1), 3);
        assert_eq!(f.floods.len(), 1, "{:?}", f.floods);
        assert_eq!(f.floods[0].raised, 4);
        assert_eq!(f.by_priority[&1].raised, 5);
        assert!(alerts(&rows, t0, t0 + chrono::Duration::hours(1), 4)
            .floods
            .is_empty());
    }

    #[test]
    fn a_wita_citys_report_reads_its_own_hours() {
        let from: DateTime<Utc> = "2026-12-06T00:00:00Z".parse().unwrap();
        let settings = ReportSettings {
            answer_targets: vec![(15, 0.9)],
            flood_per_10_min: 10,
            zones: crate::domain::Zones::new(
                crate::domain::Zone::Wib,
                &[("badung".to_owned(), crate::domain::Zone::Wita)]
                    .into_iter()
                    .collect(),
            ),
        };
        let rows = ShiftRows::default();
        let to = from + chrono::Duration::hours(8);
        let page = |city: &str| {
            let r = ShiftReport::compute(city, from, to, to, &rows, &settings, None);
            super::html::render(&r, super::html::Lang::Id, super::html::Styles::Inline)
        };
        // 00:00 UTC is 08:00 WITA, 07:00 WIB.
        let badung = page("badung");
        assert!(
            badung.contains("06-12-2026 08:00 – 06-12-2026 16:00 WITA"),
            "{badung:.600}"
        );
        let cilegon = page("cilegon");
        assert!(
            cilegon.contains("06-12-2026 07:00 – 06-12-2026 15:00 WIB"),
            "{cilegon:.600}"
        );
    }
}
