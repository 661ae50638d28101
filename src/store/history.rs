//! History queries: what `/api/history/...` asks of the store, validated
//! here once, answered by either backend (PostgreSQL or bounded memory).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{CallCategory, CallLine};

/// The most buckets one query may return.
pub const MAX_BUCKETS: i64 = 10_000;
/// The longest bucket, seconds (a year): longer ones answer nothing a year
/// would not, and their arithmetic would overflow.
pub const MAX_BUCKET_S: i64 = 366 * 86_400;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct QueryError(pub String);

/// A time range cut into equal buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Duration,
}

/// `from`/`to` as RFC 3339 (default: the last hour), `bucket` as `30s`, `5m`, `1h`, `1d` or seconds.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub bucket: Option<String>,
}

pub fn parse_duration(s: &str) -> Result<Duration, QueryError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| QueryError(format!("bucket {s:?}: expected e.g. 30s, 5m, 1h, 1d")))?;
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(QueryError(format!(
                "bucket {s:?}: unit must be s, m, h or d"
            )))
        }
    };
    match n.checked_mul(per) {
        Some(secs) if secs > 0 && secs <= MAX_BUCKET_S => Ok(Duration::seconds(secs)),
        Some(0) => Err(QueryError("bucket must be positive".into())),
        _ => Err(QueryError(format!(
            "bucket {s:?}: at most {} days",
            MAX_BUCKET_S / 86_400
        ))),
    }
}

impl RangeParams {
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Range, QueryError> {
        let time = |name: &str,
                    v: &Option<String>,
                    default: DateTime<Utc>|
         -> Result<DateTime<Utc>, QueryError> {
            match v {
                None => Ok(default),
                Some(s) => DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        QueryError(format!(
                            "{name} {s:?}: {e} (expected RFC 3339, e.g. 2026-11-22T07:00:00+07:00)"
                        ))
                    }),
            }
        };
        let to = time("to", &self.to, now)?;
        let from = time("from", &self.from, to - Duration::hours(1))?;
        if from >= to {
            return Err(QueryError("from must be before to".into()));
        }
        let bucket = match &self.bucket {
            Some(b) => parse_duration(b)?,
            None => Duration::seconds(((to - from).num_seconds() / 120).max(1)),
        };
        if (to - from).num_seconds() / bucket.num_seconds() > MAX_BUCKETS {
            return Err(QueryError(format!(
                "that range has more than {MAX_BUCKETS} buckets: choose a larger bucket"
            )));
        }
        Ok(Range { from, to, bucket })
    }

    /// The start of the bucket holding `t` (buckets are aligned to the Unix epoch).
    pub fn bucket_of(range: &Range, t: DateTime<Utc>) -> DateTime<Utc> {
        let b = range.bucket.num_seconds();
        let s = t.timestamp().div_euclid(b) * b;
        DateTime::from_timestamp(s, 0).unwrap_or(t)
    }
}

/// An ATCS metric per approach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AtcsMetric {
    Saturation,
    FlowVph,
    QueueM,
    GreenS,
}

impl AtcsMetric {
    pub fn column(self) -> &'static str {
        match self {
            AtcsMetric::Saturation => "saturation",
            AtcsMetric::FlowVph => "flow_vph",
            AtcsMetric::QueueM => "queue_m",
            AtcsMetric::GreenS => "green_s",
        }
    }
}

/// One bucket of a numeric series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub n: u64,
    pub avg: f64,
    pub max: f64,
}

/// One bucket of call statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallBucket {
    pub t: Option<DateTime<Utc>>,
    pub received: u64,
    pub answered: u64,
    pub answered_within_15s: u64,
    pub answered_within_20s: u64,
    pub abandoned: u64,
    pub answer_s_avg: Option<f64>,
}

/// One unit status message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitRecord {
    pub ts: DateTime<Utc>,
    pub unit: String,
    pub agency: String,
    pub status: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub call_id: Option<String>,
}

/// What a history query asks.
#[derive(Clone, Debug)]
pub enum HistoryQuery {
    Atcs {
        city: String,
        intersection: String,
        approach: Option<String>,
        metric: AtcsMetric,
        range: Range,
    },
    Calls {
        city: String,
        line: Option<CallLine>,
        category: Option<CallCategory>,
        range: Range,
    },
    Units {
        city: String,
        unit: Option<String>,
        range: Range,
    },
    Kpi {
        city: String,
        service: String,
        metric: String,
        range: Range,
    },
    /// Every stored event of one call, in time order (at most
    /// [`CALL_TIMELINE_MAX`]): the timeline of a dispatcher's call detail.
    CallTimeline { city: String, call_id: String },
    /// The commands sent to one junction in the range, newest first (at
    /// most [`COMMANDS_MAX`]), each with its controller's first answer.
    Commands {
        city: String,
        intersection: String,
        range: Range,
    },
    /// Every alert transition in the range, oldest first (at most
    /// [`ALERTS_MAX`]): the alerts' history and the shift report.
    Alerts { city: String, range: Range },
}

/// The most alert transitions a history answer holds.
pub const ALERTS_MAX: usize = 10_000;

/// The most commands a junction's history returns.
pub const COMMANDS_MAX: usize = 500;

/// A command as stored, with what its controller answered.
#[derive(Clone, Debug, Serialize)]
pub struct CommandRecord {
    pub command: crate::contract::Command,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
    /// `applied` or `rejected`; null when no answer was stored.
    pub status: Option<String>,
    pub reason: Option<String>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub ack_ts: Option<DateTime<Utc>>,
}

/// The most events a call's timeline returns.
pub const CALL_TIMELINE_MAX: usize = 1000;

impl HistoryQuery {
    /// Refuses names that cannot name anything on the bus (city slugs,
    /// identifiers, KPI metrics as the contract defines them), so that a
    /// NUL or a megabyte of text never reaches the database as a parameter.
    pub fn check(&self) -> Result<(), QueryError> {
        use crate::contract::topic::{is_city_slug, is_identifier};
        let city = match self {
            HistoryQuery::Atcs { city, .. }
            | HistoryQuery::Calls { city, .. }
            | HistoryQuery::Units { city, .. }
            | HistoryQuery::Kpi { city, .. }
            | HistoryQuery::CallTimeline { city, .. }
            | HistoryQuery::Commands { city, .. }
            | HistoryQuery::Alerts { city, .. } => city,
        };
        if !is_city_slug(city) {
            return Err(QueryError(format!(
                "city {city:?} is not a city slug (1-64 of a-z 0-9 -)"
            )));
        }
        let ident = |what: &str, v: &str| {
            if is_identifier(v) {
                Ok(())
            } else {
                Err(QueryError(format!(
                    "{what} {v:?} is not an identifier (1-64 of a-z A-Z 0-9 _ -)"
                )))
            }
        };
        match self {
            HistoryQuery::Atcs {
                intersection,
                approach,
                ..
            } => {
                ident("intersection", intersection)?;
                approach.as_deref().map_or(Ok(()), |a| ident("approach", a))
            }
            HistoryQuery::Calls { .. } | HistoryQuery::Alerts { .. } => Ok(()),
            HistoryQuery::Commands { intersection, .. } => ident("intersection", intersection),
            HistoryQuery::CallTimeline { call_id, .. } => ident("call", call_id),
            HistoryQuery::Units { unit, .. } => {
                unit.as_deref().map_or(Ok(()), |u| ident("unit", u))
            }
            HistoryQuery::Kpi {
                service, metric, ..
            } => {
                ident("service", service)?;
                if crate::contract::validate::is_kpi_metric(metric) {
                    Ok(())
                } else {
                    Err(QueryError(format!(
                        "metric {metric:?} is not a KPI metric (1-64 of a-z 0-9 _ .)"
                    )))
                }
            }
        }
    }
}

/// What it gets back.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum HistoryAnswer {
    Series(Vec<Point>),
    Calls(Vec<CallBucket>),
    Units(Vec<UnitRecord>),
    CallEvents(Vec<crate::contract::CallEvent>),
    Commands(Vec<CommandRecord>),
    Alerts(Vec<crate::contract::Alert>),
}

/// Accumulates points per bucket (for the memory backend and tests).
#[derive(Default)]
pub struct Accumulator {
    buckets: std::collections::BTreeMap<DateTime<Utc>, (u64, f64, f64)>,
}

impl Accumulator {
    pub fn add(&mut self, t: DateTime<Utc>, v: f64) {
        let e = self.buckets.entry(t).or_insert((0, 0.0, f64::NEG_INFINITY));
        e.0 += 1;
        e.1 += v;
        e.2 = e.2.max(v);
    }
    pub fn points(self) -> Vec<Point> {
        self.buckets
            .into_iter()
            .map(|(t, (n, sum, max))| Point {
                t,
                n,
                avg: sum / n as f64,
                max,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ones_say_why() {
        let now: DateTime<Utc> = "2026-11-22T01:00:00Z".parse().unwrap();
        let r = RangeParams {
            bucket: Some("5m".into()),
            ..Default::default()
        }
        .resolve(now)
        .unwrap();
        assert_eq!((r.to - r.from).num_minutes(), 60);
        assert_eq!(r.bucket.num_seconds(), 300);
        assert!(RangeParams {
            bucket: Some("5x".into()),
            ..Default::default()
        }
        .resolve(now)
        .is_err());
        assert!(RangeParams {
            bucket: Some("1s".into()),
            from: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        }
        .resolve(now)
        .unwrap_err()
        .0
        .contains("buckets"));
        // A bucket whose seconds overflow, or that is longer than a year.
        for b in ["106751991167300d", "9223372036854775807s", "367d", "0m"] {
            let e = RangeParams {
                bucket: Some(b.into()),
                ..Default::default()
            }
            .resolve(now)
            .unwrap_err();
            assert!(e.0.contains("bucket"), "{b}: {e}");
        }
        assert!(RangeParams {
            from: Some("yesterday".into()),
            ..Default::default()
        }
        .resolve(now)
        .unwrap_err()
        .0
        .contains("RFC 3339"));
        assert!(RangeParams {
            from: Some("2026-11-22T02:00:00Z".into()),
            ..Default::default()
        }
        .resolve(now)
        .is_err());
    }
}
