//! Subscriptions: what a screen asks for. Parsed from the `/ws` query string
//! on connect or from a `subscribe` message later. Clients with equal filters
//! share one encoded frame per tick.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::contract::{CallLine, Family};
use crate::state::{Update, UpdateKind};

/// A subscription. Empty sets mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Bus families (`atcs`, `calls`, `units`, `apps`, `kpi`); counters pass any family filter.
    pub families: BTreeSet<Family>,
    /// Update kinds (`intersection`, `call`, `call_event`, `feed`, ...).
    pub kinds: BTreeSet<UpdateKind>,
    pub cities: BTreeSet<String>,
    /// Intersection ids: applies to updates about an intersection.
    pub intersections: BTreeSet<String>,
    /// Districts (kecamatan): applies to updates about an intersection.
    pub districts: BTreeSet<String>,
    /// Call lines `112`, `119`: applies to call updates.
    pub lines: BTreeSet<CallLine>,
    /// At most one update per entity per this many milliseconds (0 = every update).
    /// Events are never held back.
    pub min_interval_ms: u32,
    /// `view=summary`: intersections come summarised (worst saturation, mode,
    /// plan, cycle; no metadata, no per-approach figures).
    pub summary: bool,
    /// Callers' personal data (address, position, notes) are sent. Set by the
    /// server from the person's role, never by the client; lanes with and
    /// without them share no frame.
    #[serde(skip)]
    pub personal: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Where a reconnecting client left off: the last `seq` it received, in the
/// hub run (`epoch`) that numbered it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    pub since: Option<u64>,
    pub epoch: Option<u64>,
}

fn split(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Filter {
    /// Parses `families=atcs,calls&cities=cilegon&lines=112&max_rate=1&since=..&epoch=..`
    /// into the filter and the resume point (unknown keys are refused).
    pub fn from_query(q: &str) -> Result<(Filter, Resume), FilterError> {
        let mut f = Filter::default();
        let mut resume = Resume::default();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let err = |what: &str| FilterError(format!("{k}={v}: {what}"));
            match k.as_ref() {
                "families" => {
                    for s in split(&v) {
                        f.families
                            .insert(Family::parse(s).ok_or_else(|| err("unknown family"))?);
                    }
                }
                "kinds" => {
                    for s in split(&v) {
                        let kind = UpdateKind::ALL
                            .into_iter()
                            .find(|k| k.as_str() == s)
                            .ok_or_else(|| err("unknown kind"))?;
                        f.kinds.insert(kind);
                    }
                }
                "cities" => f.cities.extend(split(&v).map(str::to_owned)),
                "intersections" => f.intersections.extend(split(&v).map(str::to_owned)),
                "districts" => f.districts.extend(split(&v).map(str::to_owned)),
                "lines" => {
                    for s in split(&v) {
                        f.lines.insert(
                            CallLine::parse(s).ok_or_else(|| err("line must be 112 or 119"))?,
                        );
                    }
                }
                "max_rate" => {
                    let r: f64 = v.parse().map_err(|_| err("not a number"))?;
                    if !(r.is_finite() && r > 0.0 && r <= 1000.0) {
                        return Err(err("must be in (0, 1000] updates per second"));
                    }
                    f.min_interval_ms = (1000.0 / r).round() as u32;
                }
                "view" => match v.as_ref() {
                    "summary" => f.summary = true,
                    "full" => f.summary = false,
                    _ => return Err(err("view must be full or summary")),
                },
                "since" => {
                    resume.since = Some(v.parse().map_err(|_| err("not a sequence number"))?)
                }
                "epoch" => resume.epoch = Some(v.parse().map_err(|_| err("not an epoch"))?),
                _ => return Err(err("unknown parameter")),
            }
        }
        Ok((f, resume))
    }

    pub fn matches(&self, u: &Update) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&u.kind) {
            return false;
        }
        if !self.families.is_empty() {
            if let Some(fam) = u.tags.family {
                if !self.families.contains(&fam) {
                    return false;
                }
            }
        }
        if !self.cities.is_empty() && !self.cities.contains(&*u.city) {
            return false;
        }
        if !self.intersections.is_empty() {
            if let Some(i) = &u.tags.intersection {
                if !self.intersections.contains(&**i) {
                    return false;
                }
            }
        }
        if !self.districts.is_empty() && u.tags.intersection.is_some() {
            match &u.tags.district {
                Some(d) if self.districts.contains(&**d) => {}
                _ => return false,
            }
        }
        if !self.lines.is_empty() {
            if let Some(l) = u.tags.line {
                if !self.lines.contains(&l) {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_parse_and_bad_ones_say_why() {
        let (f, resume) =
            Filter::from_query("families=atcs,calls&lines=112&max_rate=2&since=42&epoch=7")
                .unwrap();
        assert_eq!(
            resume,
            Resume {
                since: Some(42),
                epoch: Some(7)
            }
        );
        assert_eq!(f.families.len(), 2);
        assert_eq!(f.min_interval_ms, 500);
        assert!(Filter::from_query("families=weather")
            .unwrap_err()
            .0
            .contains("unknown family"));
        assert!(Filter::from_query("lines=113").is_err());
        assert!(Filter::from_query("colour=red").is_err());
        assert!(Filter::from_query("max_rate=0").is_err());
    }
}
