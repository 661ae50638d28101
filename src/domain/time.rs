//! The city's local time. Indonesia has three zones, none with daylight
//! saving: WIB (UTC+7: Sumatra, Java, West and Central Kalimantan), WITA
//! (UTC+8: Bali, Nusa Tenggara, Sulawesi, East Kalimantan) and WIT (UTC+9:
//! Maluku, Papua). Each city has its zone (`[cities]` in the settings, WIB by
//! default): its "today" counters roll over at its own midnight, its report
//! shows its own hours, its screens label the zone. Timestamps Kendali
//! writes on the bus carry +07:00 (the contract accepts any offset).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One of Indonesia's three time zones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Zone {
    /// Waktu Indonesia Barat, UTC+7.
    #[default]
    #[serde(rename = "WIB")]
    Wib,
    /// Waktu Indonesia Tengah, UTC+8.
    #[serde(rename = "WITA")]
    Wita,
    /// Waktu Indonesia Timur, UTC+9.
    #[serde(rename = "WIT")]
    Wit,
}

impl Zone {
    pub const ALL: [Zone; 3] = [Zone::Wib, Zone::Wita, Zone::Wit];

    /// Hours ahead of UTC.
    pub fn hours(self) -> i32 {
        match self {
            Zone::Wib => 7,
            Zone::Wita => 8,
            Zone::Wit => 9,
        }
    }

    pub fn offset(self) -> FixedOffset {
        // 7 to 9 h is well within the ±24 h FixedOffset accepts.
        FixedOffset::east_opt(self.hours() * 3600).expect("+07:00 to +09:00 are valid offsets")
    }

    /// The label the screens show: `WIB`, `WITA`, `WIT`.
    pub fn label(self) -> &'static str {
        match self {
            Zone::Wib => "WIB",
            Zone::Wita => "WITA",
            Zone::Wit => "WIT",
        }
    }

    /// The IANA zone browsers format times in.
    pub fn iana(self) -> &'static str {
        match self {
            Zone::Wib => "Asia/Jakarta",
            Zone::Wita => "Asia/Makassar",
            Zone::Wit => "Asia/Jayapura",
        }
    }

    /// The local date of `t`.
    pub fn date(self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.offset()).date_naive()
    }

    /// The start of `now`'s local day, in UTC.
    pub fn day_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.date(now)
            .and_hms_opt(0, 0, 0)
            .and_then(|midnight| midnight.and_local_timezone(self.offset()).single())
            .map(|t| t.with_timezone(&Utc))
            // A fixed offset: midnight always exists, once.
            .unwrap_or(now)
    }
}

impl std::str::FromStr for Zone {
    type Err = String;

    /// `WIB`, `WITA` or `WIT`, in any case.
    fn from_str(s: &str) -> Result<Zone, String> {
        Zone::ALL
            .into_iter()
            .find(|z| z.label().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not an Indonesian time zone: WIB, WITA or WIT"))
    }
}

/// Each city's zone: the settings' `cities.time_zones`, and
/// `cities.default_time_zone` for the others.
#[derive(Clone, Debug, Default)]
pub struct Zones {
    default: Zone,
    cities: HashMap<String, Zone>,
}

impl Zones {
    pub fn new(default: Zone, cities: &BTreeMap<String, Zone>) -> Zones {
        Zones {
            default,
            cities: cities.iter().map(|(c, z)| (c.clone(), *z)).collect(),
        }
    }

    pub fn of(&self, city: &str) -> Zone {
        self.cities.get(city).copied().unwrap_or(self.default)
    }

    /// The earliest start of "today" among the zones in use (a restart
    /// restores every city's day from it).
    pub fn earliest_day_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        std::iter::once(self.default)
            .chain(self.cities.values().copied())
            .map(|z| z.day_start(now))
            .min()
            .unwrap_or(now)
    }
}

/// Western Indonesia Time, +07:00 (what Kendali stamps its own messages with).
pub fn wib() -> FixedOffset {
    Zone::Wib.offset()
}

/// The WIB date of `t`.
pub fn wib_date(t: DateTime<Utc>) -> NaiveDate {
    Zone::Wib.date(t)
}

/// The start of `now`'s WIB day, in UTC.
pub fn wib_day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Zone::Wib.day_start(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wib_day_starts_at_midnight_plus_seven() {
        let t: DateTime<Utc> = "2026-11-22T16:59:59Z".parse().unwrap();
        assert_eq!(wib_date(t).to_string(), "2026-11-22");
        assert_eq!(wib_day_start(t).to_rfc3339(), "2026-11-21T17:00:00+00:00");
        let t: DateTime<Utc> = "2026-11-22T17:00:00Z".parse().unwrap();
        assert_eq!(wib_date(t).to_string(), "2026-11-23");
        assert_eq!(wib_day_start(t), t);
    }

    #[test]
    fn each_zone_has_its_own_midnight() {
        // 16:30 UTC: 23:30 WIB, 00:30 WITA, 01:30 WIT.
        let t: DateTime<Utc> = "2026-12-06T16:30:00Z".parse().unwrap();
        let dates: Vec<String> = Zone::ALL.iter().map(|z| z.date(t).to_string()).collect();
        assert_eq!(dates, ["2026-12-06", "2026-12-07", "2026-12-07"]);
        assert_eq!(
            Zone::Wita.day_start(t).to_rfc3339(),
            "2026-12-06T16:00:00+00:00"
        );
        assert_eq!(
            Zone::Wit.day_start(t).to_rfc3339(),
            "2026-12-06T15:00:00+00:00"
        );
        let zones = Zones::new(
            Zone::Wib,
            &[("badung".to_owned(), Zone::Wita)].into_iter().collect(),
        );
        assert_eq!(zones.of("badung"), Zone::Wita);
        assert_eq!(zones.of("cilegon"), Zone::Wib);
        // WIB's day began 23.5 h ago, WITA's half an hour ago: the earlier.
        assert_eq!(
            zones.earliest_day_start(t).to_rfc3339(),
            "2026-12-05T17:00:00+00:00"
        );
        let z: Zone = serde_json::from_str("\"WITA\"").unwrap();
        assert_eq!(
            (z, z.label(), z.iana()),
            (Zone::Wita, "WITA", "Asia/Makassar")
        );
    }
}
