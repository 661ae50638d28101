//! Alerts as alarm management standards have them (ISA-18.2, IEC 62682):
//! the rules' settings (`[alerts]`, per city), and the lifecycle of one
//! alert, a pure function of what happened: raised -> acknowledged ->
//! cleared -> normal, or raised -> cleared (waiting for an
//! acknowledgement) -> normal; shelving for a time with a reason, and
//! suppression by design. The engine (`crate::alerts`) decides when a
//! rule's condition holds; this module says what that makes of an alert.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contract::{Alert, AlertRule, AlertState, AlertTransition, Ts};

/// One rule's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    pub enabled: bool,
    /// 1 (critical) .. 4 (low).
    pub priority: u8,
    /// The rule's threshold, in its own unit (see [`AlertRule`]); rules
    /// that follow a condition the state judges have none.
    pub threshold: Option<f64>,
    /// How long the condition must hold before the alert is raised, seconds.
    pub for_s: u64,
    /// The rolling window a rate is measured over, seconds (`answer_target`).
    pub window_s: u64,
    /// Fewest calls a rate is judged on (`answer_target`, `call_surge`).
    pub min_count: u32,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            enabled: true,
            priority: 3,
            threshold: None,
            for_s: 0,
            window_s: 900,
            min_count: 10,
        }
    }
}

/// One rule's settings for one city: what differs from `alerts.rules`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub priority: Option<u8>,
    pub threshold: Option<f64>,
    pub for_s: Option<u64>,
    pub window_s: Option<u64>,
    pub min_count: Option<u32>,
}

/// `[alerts]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Whether the alert engine runs on this node.
    pub enabled: bool,
    /// The longest an alert may be shelved, minutes.
    pub shelve_max_min: u32,
    /// Alarm management standards (EEMUA 191, ISA-18.2) call more than this
    /// many new alerts in 10 minutes per operator a flood.
    pub flood_per_10_min: u32,
    /// Every rule, for every city.
    pub rules: BTreeMap<AlertRule, RuleSettings>,
    /// Per city, what differs (`[alerts.cities.badung.call_unanswered]`).
    pub cities: BTreeMap<String, BTreeMap<AlertRule, RuleOverride>>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        use AlertRule::*;
        let rule = |priority: u8, threshold: Option<f64>, for_s: u64| RuleSettings {
            priority,
            threshold,
            for_s,
            ..RuleSettings::default()
        };
        let rules = BTreeMap::from([
            // NENA: 95 % of calls answered within 20 s.
            (CallUnanswered, rule(1, Some(20.0), 0)),
            // NENA: 90 % within 15 s, judged over the last 15 minutes.
            (AnswerTarget, rule(2, Some(90.0), 0)),
            // The stage targets are `dispatch.unit_*_s`; `threshold` scales them.
            (UnitStage, rule(2, Some(1.0), 0)),
            // The state marks a feed stale (`state.stale_*_s`); a minute more makes it news.
            (FeedStale, rule(2, None, 60)),
            (ControllerOffline, rule(2, None, 30)),
            (ControllerFlashing, rule(2, None, 0)),
            // A fault that comes and goes within a minute is the flicker rule's business.
            (DetectorFault, rule(4, None, 60)),
            // The condition itself needs `traffic.congestion_cycles` cycles.
            (JunctionCongested, rule(3, None, 0)),
            (CommandTimedOut, rule(3, None, 0)),
            // Service KPIs move over hours: ten minutes below target is not noise.
            (KpiBelowTarget, rule(4, None, 600)),
            // Twice the calls of the same hour of the last four weeks.
            (CallSurge, rule(2, Some(2.0), 0)),
        ]);
        AlertSettings {
            enabled: true,
            shelve_max_min: 480,
            flood_per_10_min: 10,
            rules,
            cities: BTreeMap::new(),
        }
    }
}

impl AlertSettings {
    /// `rule`'s settings in `city`.
    pub fn rule(&self, city: &str, rule: AlertRule) -> RuleSettings {
        let mut r = self.rules.get(&rule).cloned().unwrap_or_default();
        if let Some(o) = self.cities.get(city).and_then(|c| c.get(&rule)) {
            r.enabled = o.enabled.unwrap_or(r.enabled);
            r.priority = o.priority.unwrap_or(r.priority);
            r.threshold = o.threshold.or(r.threshold);
            r.for_s = o.for_s.unwrap_or(r.for_s);
            r.window_s = o.window_s.unwrap_or(r.window_s);
            r.min_count = o.min_count.unwrap_or(r.min_count);
        }
        r
    }

    pub fn check(&self) -> Result<(), String> {
        if self.shelve_max_min == 0 || self.shelve_max_min > 7 * 24 * 60 {
            return Err("alerts.shelve_max_min must be 1..=10080".into());
        }
        if self.flood_per_10_min == 0 {
            return Err("alerts.flood_per_10_min must be at least 1".into());
        }
        let cities = self.cities.keys().map(String::as_str);
        for city in std::iter::once("").chain(cities) {
            for rule in AlertRule::ALL {
                let r = self.rule(city, rule);
                let at = if city.is_empty() {
                    format!("alerts.rules.{}", rule.as_str())
                } else {
                    format!("alerts.cities.{city}.{}", rule.as_str())
                };
                if !(1..=4).contains(&r.priority) {
                    return Err(format!("{at}.priority must be 1..=4"));
                }
                if r.threshold.is_some_and(|t| !t.is_finite() || t < 0.0) {
                    return Err(format!("{at}.threshold must be a number >= 0"));
                }
                if r.window_s == 0 {
                    return Err(format!("{at}.window_s must be at least 1"));
                }
            }
        }
        Ok(())
    }
}

/// Alert ids: UUID v5 of `{city}/{rule}/{entity}` in this namespace, so
/// that one rule and entity is one alert, whichever node raises it.
const ALERT_NS: Uuid = Uuid::from_u128(0x6b656e64_616c_6941_8c72_616c65727431);

pub fn alert_id(city: &str, rule: AlertRule, entity: &str) -> Uuid {
    Uuid::new_v5(
        &ALERT_NS,
        format!("{city}/{}/{entity}", rule.as_str()).as_bytes(),
    )
}

/// What a rule saw: the entity and the figures behind the alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: AlertRule,
    pub entity: String,
    pub group: String,
    pub district: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub unit: Option<String>,
}

/// Why an operator's transition cannot be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the alert is already acknowledged")]
    AlreadyAcknowledged,
    #[error("the alert is not shelved")]
    NotShelved,
    #[error("the alert is back to normal")]
    Normal,
}

fn next(a: &Alert, at: Ts, transition: AlertTransition, by: &str) -> Alert {
    Alert {
        event_id: Uuid::new_v4(),
        ts: at,
        transition,
        by: by.to_owned(),
        reason: None,
        ..a.clone()
    }
}

/// The engine's name for a rule, as `by`.
pub fn rule_actor(rule: AlertRule) -> String {
    format!("rule:{}", rule.as_str())
}

/// A rule's condition began: a new alert, or one that was waiting for its
/// acknowledgement (or normal) raised again. `None` when it is already active.
pub fn raise(
    city: &str,
    previous: Option<&Alert>,
    f: &Finding,
    priority: u8,
    at: Ts,
    suppressed: bool,
) -> Option<Alert> {
    if previous.is_some_and(|a| a.state.is_active()) {
        return None;
    }
    let by = rule_actor(f.rule);
    let fresh = Alert {
        event_id: Uuid::new_v4(),
        alert_id: alert_id(city, f.rule, &f.entity),
        ts: at,
        rule: f.rule,
        entity: f.entity.clone(),
        group: f.group.clone(),
        district: f.district.clone(),
        priority,
        state: AlertState::ActiveUnack,
        transition: AlertTransition::Raised,
        by,
        reason: None,
        raised_at: at,
        acked_at: None,
        acked_by: None,
        cleared_at: None,
        shelved_until: None,
        shelved_by: None,
        suppressed,
        value: f.value,
        threshold: f.threshold,
        unit: f.unit.clone(),
    };
    Some(match previous {
        // A shelving outlives the condition's comings and goings.
        Some(p) => Alert {
            shelved_until: p.shelved_until,
            shelved_by: p.shelved_by.clone(),
            ..fresh
        },
        None => fresh,
    })
}

/// The condition ended: an acknowledged (or shelved) alert is back to
/// normal; an unacknowledged one waits for its acknowledgement.
pub fn clear(a: &Alert, at: Ts) -> Option<Alert> {
    if !a.state.is_active() {
        return None;
    }
    let by = rule_actor(a.rule);
    let to_normal = a.state == AlertState::ActiveAck || a.shelved_until.is_some() || a.suppressed;
    let mut n = next(
        a,
        at,
        if to_normal {
            AlertTransition::Normal
        } else {
            AlertTransition::Cleared
        },
        &by,
    );
    n.state = if to_normal {
        AlertState::Normal
    } else {
        AlertState::ClearedUnack
    };
    n.cleared_at = Some(at);
    Some(n)
}

/// Someone acknowledged it. An alert whose rule reports a one-off event
/// (`latching`: a command that timed out) is over once acknowledged.
pub fn acknowledge(
    a: &Alert,
    at: Ts,
    by: &str,
    reason: Option<String>,
    latching: bool,
) -> Result<Alert, LifecycleError> {
    let state = match a.state {
        AlertState::ActiveUnack if latching => AlertState::Normal,
        AlertState::ActiveUnack => AlertState::ActiveAck,
        AlertState::ClearedUnack => AlertState::Normal,
        AlertState::ActiveAck => return Err(LifecycleError::AlreadyAcknowledged),
        AlertState::Normal => return Err(LifecycleError::Normal),
    };
    let mut n = next(a, at, AlertTransition::Acknowledged, by);
    n.state = state;
    n.reason = reason;
    n.acked_at = Some(at);
    n.acked_by = Some(by.to_owned());
    if state == AlertState::Normal && n.cleared_at.is_none() {
        n.cleared_at = Some(at);
    }
    Ok(n)
}

/// Someone shelved it until `until`, for `reason`.
pub fn shelve(
    a: &Alert,
    at: Ts,
    by: &str,
    reason: String,
    until: Ts,
) -> Result<Alert, LifecycleError> {
    if a.state == AlertState::Normal {
        return Err(LifecycleError::Normal);
    }
    let mut n = next(a, at, AlertTransition::Shelved, by);
    n.reason = Some(reason);
    n.shelved_until = Some(until);
    n.shelved_by = Some(by.to_owned());
    Ok(n)
}

/// Its shelving ended: by time (`by` the rule), or by someone. An alert
/// still active comes back unacknowledged, as a new one would.
pub fn unshelve(a: &Alert, at: Ts, by: &str) -> Result<Alert, LifecycleError> {
    if a.shelved_until.is_none() {
        return Err(LifecycleError::NotShelved);
    }
    let mut n = next(a, at, AlertTransition::Unshelved, by);
    n.shelved_until = None;
    n.shelved_by = None;
    if n.state == AlertState::ActiveAck {
        n.state = AlertState::ActiveUnack;
        n.acked_at = None;
        n.acked_by = None;
    }
    Ok(n)
}

/// Closes an alert that has cleared and waited too long for an
/// acknowledgement among too many others (the live alerts are bounded):
/// back to normal, by `rule:overflow`, saying why.
pub fn overflow(a: &Alert, at: Ts) -> Option<Alert> {
    if a.state != AlertState::ClearedUnack {
        return None;
    }
    let mut n = next(a, at, AlertTransition::Normal, "rule:overflow");
    n.state = AlertState::Normal;
    n.reason = Some("closed unacknowledged: too many cleared alerts waiting".into());
    Some(n)
}

/// Suppression by design begins or ends (e.g. a detector fault while its
/// controller flashes). `None` when nothing changes.
pub fn suppress(a: &Alert, at: Ts, on: bool) -> Option<Alert> {
    if a.suppressed == on || a.state == AlertState::Normal {
        return None;
    }
    let by = rule_actor(a.rule);
    let mut n = next(
        a,
        at,
        if on {
            AlertTransition::Suppressed
        } else {
            AlertTransition::Unsuppressed
        },
        &by,
    );
    n.suppressed = on;
    Some(n)
}

/// A shelving that has run out, at `now`.
pub fn shelving_over(a: &Alert, now: DateTime<Utc>) -> bool {
    a.shelved_until
        .is_some_and(|u| u.with_timezone(&Utc) <= now)
}

/// Whether a KPI is better low: waits, durations, queues and open
/// backlogs; everything else (shares, services given) is better high.
/// The screens judge KPIs the same way (web/js/targets.js).
pub fn lower_is_better(metric: &str, unit: &str) -> bool {
    ["min", "s", "h", "jam", "hari", "days"].contains(&unit)
        || [
            "wait", "queue", "backlog", "_open", "late", "overdue", "duration",
        ]
        .iter()
        .any(|w| metric.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn finding() -> Finding {
        Finding {
            rule: AlertRule::CallUnanswered,
            entity: "call:c1".into(),
            group: "call:c1".into(),
            district: None,
            value: Some(25.0),
            threshold: Some(20.0),
            unit: Some("s".into()),
        }
    }

    #[test]
    fn an_alert_goes_through_the_isa_18_2_states() {
        let t0 = at("2026-12-06T08:00:00+07:00");
        let a = raise("kota", None, &finding(), 1, t0, false).unwrap();
        assert_eq!(a.state, AlertState::ActiveUnack);
        assert_eq!(
            a.alert_id,
            alert_id("kota", AlertRule::CallUnanswered, "call:c1")
        );
        assert!(raise("kota", Some(&a), &finding(), 1, t0, false).is_none());
        // Acknowledged, then cleared: normal.
        let acked = acknowledge(&a, t0, "dewi", None, false).unwrap();
        assert_eq!(acked.state, AlertState::ActiveAck);
        assert_eq!(
            acknowledge(&acked, t0, "dewi", None, false),
            Err(LifecycleError::AlreadyAcknowledged)
        );
        assert_eq!(clear(&acked, t0).unwrap().state, AlertState::Normal);
        // Cleared first: waits for an acknowledgement, then normal.
        let cleared = clear(&a, t0).unwrap();
        assert_eq!(cleared.state, AlertState::ClearedUnack);
        assert_eq!(cleared.transition, AlertTransition::Cleared);
        let n = acknowledge(&cleared, t0, "dewi", None, false).unwrap();
        assert_eq!(n.state, AlertState::Normal);
        // Raised again while waiting: active and unacknowledged, same alert.
        let again = raise("kota", Some(&cleared), &finding(), 1, t0, false).unwrap();
        assert_eq!(again.state, AlertState::ActiveUnack);
        assert_eq!(again.alert_id, a.alert_id);
        assert_ne!(again.event_id, a.event_id);
    }

    #[test]
    fn a_shelved_alert_comes_back_unacknowledged_when_its_shelving_ends() {
        let t0 = at("2026-12-06T08:00:00+07:00");
        let a = raise("kota", None, &finding(), 1, t0, false).unwrap();
        let acked = acknowledge(&a, t0, "dewi", None, false).unwrap();
        let until = at("2026-12-06T08:30:00+07:00");
        let s = shelve(&acked, t0, "dewi", "maintenance".into(), until).unwrap();
        assert_eq!(s.shelved_until, Some(until));
        assert!(!shelving_over(&s, t0.with_timezone(&Utc)));
        assert!(shelving_over(&s, until.with_timezone(&Utc)));
        let back = unshelve(&s, until, "rule:call_unanswered").unwrap();
        assert_eq!(back.state, AlertState::ActiveUnack);
        assert_eq!(back.shelved_until, None);
        assert_eq!(unshelve(&back, until, "x"), Err(LifecycleError::NotShelved));
        // A shelved alert that clears is over: nobody needs to acknowledge it.
        assert_eq!(clear(&s, t0).unwrap().state, AlertState::Normal);
    }

    #[test]
    fn a_latching_alert_is_over_once_acknowledged() {
        let t0 = at("2026-12-06T08:00:00+07:00");
        let a = raise("kota", None, &finding(), 3, t0, false).unwrap();
        let n = acknowledge(&a, t0, "budi", None, true).unwrap();
        assert_eq!(n.state, AlertState::Normal);
        assert!(!n.is_live());
    }

    #[test]
    fn overflow_closes_only_an_alert_waiting_for_its_acknowledgement() {
        let t0 = at("2026-12-06T08:00:00+07:00");
        let a = raise("kota", None, &finding(), 1, t0, false).unwrap();
        assert!(overflow(&a, t0).is_none(), "an active alert stays");
        let n = overflow(&clear(&a, t0).unwrap(), t0).unwrap();
        assert_eq!(n.state, AlertState::Normal);
        assert_eq!(n.by, "rule:overflow");
        assert!(n.reason.is_some());
        assert!(!n.is_live());
    }

    #[test]
    fn a_city_overrides_only_what_it_names() {
        let mut s = AlertSettings::default();
        s.cities.entry("badung".into()).or_default().insert(
            AlertRule::CallUnanswered,
            RuleOverride {
                threshold: Some(30.0),
                ..Default::default()
            },
        );
        assert_eq!(
            s.rule("badung", AlertRule::CallUnanswered).threshold,
            Some(30.0)
        );
        assert_eq!(s.rule("badung", AlertRule::CallUnanswered).priority, 1);
        assert_eq!(
            s.rule("cilegon", AlertRule::CallUnanswered).threshold,
            Some(20.0)
        );
        assert!(s.check().is_ok());
        s.rules.get_mut(&AlertRule::FeedStale).unwrap().priority = 7;
        assert!(s
            .check()
            .unwrap_err()
            .contains("alerts.rules.feed_stale.priority"));
    }
}
