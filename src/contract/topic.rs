//! Topic names of the bus: parsing `city/{city}/...` into a typed [`Topic`]
//! and printing it back. A topic names its city and the entity it speaks for;
//! validation later checks that the payload agrees with it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::messages::CallLine;

/// The families of the bus: one MQTT subscription each, one metrics label each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Atcs,
    Calls,
    Units,
    Apps,
    Kpi,
    /// Kendali's own alerts (v1.3), read back like every operator action.
    Alerts,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Atcs,
        Family::Calls,
        Family::Units,
        Family::Apps,
        Family::Kpi,
        Family::Alerts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Atcs => "atcs",
            Family::Calls => "calls",
            Family::Units => "units",
            Family::Apps => "apps",
            Family::Kpi => "kpi",
            Family::Alerts => "alerts",
        }
    }

    /// The MQTT filter that subscribes to this family in every city.
    pub fn filter(self) -> &'static str {
        match self {
            Family::Atcs => "city/+/atcs/#",
            Family::Calls => "city/+/calls/+",
            Family::Units => "city/+/units/#",
            Family::Apps => "city/+/apps/+/events",
            Family::Kpi => "city/+/kpi/+",
            Family::Alerts => "city/+/alerts/+",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A parsed topic of the contract.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    IntersectionInfo { city: String, intersection: String },
    IntersectionState { city: String, intersection: String },
    Command { city: String, intersection: String },
    CommandAck { city: String, intersection: String },
    Call { city: String, line: CallLine },
    Unit { city: String, unit: String },
    Assignment { city: String, unit: String },
    AppEvents { city: String, service: String },
    Kpi { city: String, service: String },
    Alert { city: String, alert_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} is not part of the contract")]
    Unknown(String),
    #[error("topic segment {0:?} is not a valid identifier (1-64 of a-z A-Z 0-9 _ -)")]
    BadSegment(String),
    #[error("city {0:?} is not a lowercase slug (a-z 0-9 -)")]
    BadCity(String),
    #[error("call line {0:?} is not 112 or 119")]
    BadLine(String),
}

/// An entity id as it may stand in a topic: 1..=64 of `[A-Za-z0-9_-]`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A city slug: 1..=64 of `[a-z0-9-]`.
pub fn is_city_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Topic {
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        let unknown = || TopicError::Unknown(topic.to_owned());
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() < 4 || parts[0] != "city" {
            return Err(unknown());
        }
        let city = parts[1];
        if !is_city_slug(city) {
            return Err(TopicError::BadCity(city.to_owned()));
        }
        let id = |s: &str| -> Result<String, TopicError> {
            if is_identifier(s) {
                Ok(s.to_owned())
            } else {
                Err(TopicError::BadSegment(s.to_owned()))
            }
        };
        let city = city.to_owned();
        match parts[2..] {
            ["atcs", i, "info"] => Ok(Topic::IntersectionInfo {
                city,
                intersection: id(i)?,
            }),
            ["atcs", i, "state"] => Ok(Topic::IntersectionState {
                city,
                intersection: id(i)?,
            }),
            ["atcs", i, "command"] => Ok(Topic::Command {
                city,
                intersection: id(i)?,
            }),
            ["atcs", i, "command", "ack"] => Ok(Topic::CommandAck {
                city,
                intersection: id(i)?,
            }),
            ["calls", line] => match CallLine::parse(line) {
                Some(line) => Ok(Topic::Call { city, line }),
                None => Err(TopicError::BadLine(line.to_owned())),
            },
            ["units", u, "status"] => Ok(Topic::Unit { city, unit: id(u)? }),
            ["units", u, "assignment"] => Ok(Topic::Assignment { city, unit: id(u)? }),
            ["apps", s, "events"] => Ok(Topic::AppEvents {
                city,
                service: id(s)?,
            }),
            ["kpi", s] => Ok(Topic::Kpi {
                city,
                service: id(s)?,
            }),
            ["alerts", a] => Ok(Topic::Alert {
                city,
                alert_id: id(a)?,
            }),
            _ => Err(unknown()),
        }
    }

    pub fn city(&self) -> &str {
        match self {
            Topic::IntersectionInfo { city, .. }
            | Topic::IntersectionState { city, .. }
            | Topic::Command { city, .. }
            | Topic::CommandAck { city, .. }
            | Topic::Call { city, .. }
            | Topic::Unit { city, .. }
            | Topic::Assignment { city, .. }
            | Topic::AppEvents { city, .. }
            | Topic::Kpi { city, .. }
            | Topic::Alert { city, .. } => city,
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Topic::IntersectionInfo { .. }
            | Topic::IntersectionState { .. }
            | Topic::Command { .. }
            | Topic::CommandAck { .. } => Family::Atcs,
            Topic::Call { .. } => Family::Calls,
            Topic::Unit { .. } | Topic::Assignment { .. } => Family::Units,
            Topic::AppEvents { .. } => Family::Apps,
            Topic::Kpi { .. } => Family::Kpi,
            Topic::Alert { .. } => Family::Alerts,
        }
    }

    /// The message kind this topic carries (also the JSON Schema's name).
    pub fn kind(&self) -> super::MessageKind {
        use super::MessageKind as K;
        match self {
            Topic::IntersectionInfo { .. } => K::IntersectionInfo,
            Topic::IntersectionState { .. } => K::IntersectionState,
            Topic::Command { .. } => K::Command,
            Topic::CommandAck { .. } => K::CommandAck,
            Topic::Call { .. } => K::CallEvent,
            Topic::Unit { .. } => K::UnitStatus,
            Topic::Assignment { .. } => K::UnitAssignment,
            Topic::AppEvents { .. } => K::AppEvent,
            Topic::Kpi { .. } => K::KpiSample,
            Topic::Alert { .. } => K::Alert,
        }
    }

    /// The contract's QoS for messages on this topic (KPI may be 0 or 1; we publish at 1).
    pub fn qos(&self) -> u8 {
        match self {
            Topic::IntersectionState { .. } => 0,
            _ => 1,
        }
    }

    /// Whether publishers set the retain flag on this topic (an alert's is
    /// set while the alert is not back to normal: see `Alert::is_live`).
    pub fn retained(&self) -> bool {
        matches!(
            self,
            Topic::IntersectionInfo { .. } | Topic::Unit { .. } | Topic::Assignment { .. }
        )
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::IntersectionInfo { city, intersection } => {
                write!(f, "city/{city}/atcs/{intersection}/info")
            }
            Topic::IntersectionState { city, intersection } => {
                write!(f, "city/{city}/atcs/{intersection}/state")
            }
            Topic::Command { city, intersection } => {
                write!(f, "city/{city}/atcs/{intersection}/command")
            }
            Topic::CommandAck { city, intersection } => {
                write!(f, "city/{city}/atcs/{intersection}/command/ack")
            }
            Topic::Call { city, line } => write!(f, "city/{city}/calls/{}", line.as_str()),
            Topic::Unit { city, unit } => write!(f, "city/{city}/units/{unit}/status"),
            Topic::Assignment { city, unit } => write!(f, "city/{city}/units/{unit}/assignment"),
            Topic::AppEvents { city, service } => write!(f, "city/{city}/apps/{service}/events"),
            Topic::Kpi { city, service } => write!(f, "city/{city}/kpi/{service}"),
            Topic::Alert { city, alert_id } => write!(f, "city/{city}/alerts/{alert_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_round_trips_through_display() {
        for t in [
            "city/cilegon/atcs/simpang-pci/info",
            "city/cilegon/atcs/simpang-pci/state",
            "city/cilegon/atcs/simpang-pci/command",
            "city/cilegon/atcs/simpang-pci/command/ack",
            "city/cilegon/calls/112",
            "city/cilegon/calls/119",
            "city/cilegon/units/amb-01/status",
            "city/cilegon/apps/perizinan/events",
            "city/cilegon/kpi/perizinan",
            "city/cilegon/alerts/0d3c6f1e-8a8b-5c52-9b1e-2f4a6c8e0b17",
        ] {
            assert_eq!(Topic::parse(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn foreign_and_malformed_topics_are_refused() {
        assert!(matches!(
            Topic::parse("city/Cilegon/calls/112"),
            Err(TopicError::BadCity(_))
        ));
        assert!(matches!(
            Topic::parse("city/cilegon/calls/113"),
            Err(TopicError::BadLine(_))
        ));
        assert!(matches!(
            Topic::parse("city/cilegon/weather/x"),
            Err(TopicError::Unknown(_))
        ));
        assert!(matches!(
            Topic::parse("home/x/y/z"),
            Err(TopicError::Unknown(_))
        ));
    }
}
