//! Timestamps as wire text, written without `core::fmt`.
//!
//! Every state update a screen receives carries three or four timestamps, and
//! chrono writes them through `core::fmt` (the source `ts` even twice: into a
//! `String`, then through `collect_str`). At 50,000 ATCS messages/s that was
//! a tenth of Kendali's CPU in the bench's profile. These writers produce the
//! same text byte for byte (checked against chrono in the tests below) and
//! hand the rare value they do not cover (a leap second, a year outside
//! 0..=9999, an offset with seconds) back to chrono.

use chrono::{DateTime, Datelike, FixedOffset, Offset, SecondsFormat, TimeZone, Timelike};
use serde::Serializer;

/// Longest text written here: `2026-11-22T08:15:00.123456789+07:00`.
const MAX: usize = 35;

/// How the offset is written.
#[derive(Clone, Copy)]
enum Zone {
    /// `Z` for a zero offset, else `+HH:MM` (chrono's serde support:
    /// `to_rfc3339_opts(AutoSi, true)`).
    Z,
    /// Always `+HH:MM` (chrono's `to_rfc3339_opts(AutoSi, false)`).
    Numeric,
}

fn two(out: &mut [u8], at: usize, v: u32) {
    out[at] = b'0' + (v / 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

/// Writes `dt` into `out`, or returns `None` for what chrono must write.
fn write<Tz: TimeZone>(dt: &DateTime<Tz>, zone: Zone, out: &mut [u8; MAX]) -> Option<usize> {
    let offset = dt.offset().fix().local_minus_utc();
    let local = dt.naive_local();
    let (year, nanos) = (local.year(), local.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 || offset % 60 != 0 {
        return None;
    }
    let y = year as u32;
    two(out, 0, y / 100);
    two(out, 2, y % 100);
    out[4] = b'-';
    two(out, 5, local.month());
    out[7] = b'-';
    two(out, 8, local.day());
    out[10] = b'T';
    two(out, 11, local.hour());
    out[13] = b':';
    two(out, 14, local.minute());
    out[16] = b':';
    two(out, 17, local.second());
    let mut n = 19;
    // chrono's AutoSi, also what its Debug does: 0, 3, 6 or 9 digits.
    let (digits, mut frac) = match nanos {
        0 => (0, 0),
        f if f % 1_000_000 == 0 => (3, f / 1_000_000),
        f if f % 1_000 == 0 => (6, f / 1_000),
        f => (9, f),
    };
    if digits > 0 {
        out[n] = b'.';
        for i in (0..digits).rev() {
            out[n + 1 + i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        n += 1 + digits;
    }
    match (zone, offset) {
        (Zone::Z, 0) => {
            out[n] = b'Z';
            n += 1;
        }
        _ => {
            out[n] = if offset < 0 { b'-' } else { b'+' };
            let m = offset.unsigned_abs() / 60;
            two(out, n + 1, m / 60);
            out[n + 3] = b':';
            two(out, n + 4, m % 60);
            n += 6;
        }
    }
    Some(n)
}

fn serialize<Tz: TimeZone, S: Serializer>(
    dt: &DateTime<Tz>,
    zone: Zone,
    fallback: impl FnOnce() -> String,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX];
    match write(dt, zone, &mut buf) {
        // Only ASCII digits and punctuation were written.
        Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).expect("ASCII")),
        None => s.serialize_str(&fallback()),
    }
}

/// A source timestamp as `to_rfc3339_opts(AutoSi, false)` writes it.
pub fn serialize_ts<S: Serializer>(ts: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    serialize(
        ts,
        Zone::Numeric,
        || ts.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        s,
    )
}

/// Any timestamp as chrono's serde support writes it (`Z` for a zero
/// offset): `#[serde(serialize_with = "...::chrono_serde")]`.
pub fn chrono_serde<Tz, S>(t: &DateTime<Tz>, s: S) -> Result<S::Ok, S::Error>
where
    Tz: TimeZone,
    Tz::Offset: std::fmt::Display,
    S: Serializer,
{
    serialize(
        t,
        Zone::Z,
        || t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        s,
    )
}

/// The same for `Option` fields: `#[serde(serialize_with = "...::chrono_serde_option")]`.
pub fn chrono_serde_option<Tz, S>(t: &Option<DateTime<Tz>>, s: S) -> Result<S::Ok, S::Error>
where
    Tz: TimeZone,
    Tz::Offset: std::fmt::Display,
    S: Serializer,
{
    match t {
        Some(t) => chrono_serde(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};

    #[derive(serde::Serialize)]
    struct Fast {
        #[serde(serialize_with = "chrono_serde")]
        rx: DateTime<Utc>,
        #[serde(serialize_with = "serialize_ts")]
        ts: DateTime<FixedOffset>,
        #[serde(serialize_with = "chrono_serde_option")]
        last: Option<DateTime<FixedOffset>>,
    }

    #[derive(serde::Serialize)]
    struct Chrono {
        rx: DateTime<Utc>,
        ts: String,
        last: Option<DateTime<FixedOffset>>,
    }

    #[test]
    fn timestamps_read_exactly_as_chrono_writes_them() {
        let offsets = [
            0,
            7 * 3600,
            8 * 3600,
            9 * 3600,
            -(3 * 3600 + 30 * 60),
            45 * 60,
            3601,
        ];
        let nanos = [
            0,
            1,
            999_999_999,
            123_000_000,
            120_000_000,
            5_000,
            971_177_000,
            100_000,
            7,
            1_500_000_000, // a leap second: chrono's own text
        ];
        let mut checked = 0;
        for (i, &(y, mo, d, h, mi, s)) in [
            (2026, 11, 22, 8, 15, 0),
            (1999, 12, 31, 23, 59, 59),
            (2000, 1, 1, 0, 0, 0),
            (9999, 12, 31, 23, 59, 59),
            (12, 3, 4, 5, 6, 7),
            (-1, 1, 1, 0, 0, 0),
            (10000, 1, 1, 0, 0, 0),
        ]
        .iter()
        .enumerate()
        {
            for (j, &n) in nanos.iter().enumerate() {
                let naive = NaiveDate::from_ymd_opt(y, mo, d)
                    .unwrap()
                    .and_hms_nano_opt(h, mi, if n >= 1_000_000_000 { 59 } else { s }, n)
                    .unwrap();
                let rx = Utc.from_utc_datetime(&naive);
                let off = FixedOffset::east_opt(offsets[(i + j) % offsets.len()]).unwrap();
                let ts = rx.with_timezone(&off);
                let fast = serde_json::to_string(&Fast {
                    rx,
                    ts,
                    last: Some(ts),
                })
                .unwrap();
                let chrono = serde_json::to_string(&Chrono {
                    rx,
                    ts: ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                    last: Some(ts),
                })
                .unwrap();
                assert_eq!(fast, chrono, "{naive} at {off}");
                checked += 1;
            }
        }
        assert_eq!(checked, 70);
        let none = serde_json::to_string(&Fast {
            rx: Utc::now(),
            ts: Utc::now().fixed_offset(),
            last: None,
        })
        .unwrap();
        assert!(none.ends_with(",\"last\":null}"), "{none}");
    }
}
