//! The city's local time. Every room today is in WIB (UTC+7, Asia/Jakarta):
//! "today" counters roll over at WIB midnight, and every timestamp Kendali
//! writes carries +07:00. Cities in WITA and WIT come with their own zone
//! (issue 24); this is the one place that will learn it.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Asia::Jakarta;

/// Western Indonesia Time, +07:00.
pub fn wib() -> FixedOffset {
    // 7 h is well within the ±24 h FixedOffset accepts, so this cannot fail.
    FixedOffset::east_opt(7 * 3600).expect("+07:00 is a valid offset")
}

/// The WIB date of `t`.
pub fn wib_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Jakarta).date_naive()
}

/// The start of `now`'s WIB day, in UTC.
pub fn wib_day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    wib_date(now)
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(Jakarta).single())
        .map(|t| t.with_timezone(&Utc))
        // Jakarta has no daylight saving: midnight always exists, once.
        .unwrap_or(now)
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
}
