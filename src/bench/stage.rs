//! `kendali bench --stage-cost N`: Kendali's own CPU per ATCS message in its
//! two busiest stages, decode (ingest) and apply (state), and the cost of
//! encoding the updates they make, in one thread with no broker, database or socket beside it.
//!
//! The end-to-end steps share two cores with the broker, the database and
//! the bench, and this machine's speed changes from day to day, so a change
//! to Kendali's cost per message hides in their noise. This figure does not:
//! run it for two builds one after the other to compare them.

use std::time::Instant;

use chrono::{Duration, Utc};
use serde::Serialize;

use crate::config::StateSettings;
use crate::contract::{decode, Limits};
use crate::state::CityState;

#[derive(Clone, Debug, Default, Serialize)]
pub struct StageCost {
    pub messages: usize,
    pub intersections: usize,
    /// Microseconds of one thread per message.
    pub decode_us: f64,
    /// Applying each message to the live state and making its updates.
    pub apply_us: f64,
    /// Encoding every update once in full, as a screen subscribed to
    /// everything, uncapped, would need them (a wall capped at one update
    /// per entity per second needs far fewer: intersection updates are
    /// encoded only when a screen is sent them).
    pub encode_us: f64,
    /// Updates the state produced per message, and their encoded bytes.
    pub updates_per_message: f64,
    pub update_bytes_per_message: f64,
}

/// Decodes and applies `messages` ATCS state messages of `intersections`
/// junctions (the end-to-end bench's payloads), timing each stage.
pub fn measure(messages: usize, intersections: usize) -> StageCost {
    let intersections = intersections.max(1);
    let start = Utc::now();
    let limits = Limits::default();
    let inputs: Vec<(String, String)> = (0..messages)
        .map(|k| {
            let id = super::load::intersection_id(k % intersections);
            // Each junction's messages 40 ms apart, so none is older than its predecessor.
            let ts = (start + Duration::milliseconds(40 * (k / intersections) as i64))
                .with_timezone(&crate::domain::wib())
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
            (
                format!("city/bench/atcs/{id}/state"),
                super::load::state_payload(&id, &ts, k as u64),
            )
        })
        .collect();
    let now = start + Duration::seconds((messages / intersections) as i64);

    let t = Instant::now();
    let decoded: Vec<_> = inputs
        .iter()
        .map(|(topic, payload)| decode(topic, payload.as_bytes(), &limits, now))
        .collect::<Result<_, _>>()
        .expect("the bench's payloads are valid");
    let decode_s = t.elapsed().as_secs_f64();

    let mut city = CityState::new(StateSettings::default());
    let mut updates = Vec::with_capacity(messages * 2);
    let t = Instant::now();
    for (topic, msg) in &decoded {
        updates.extend(
            city.apply(topic, msg, now)
                .expect("the bench's messages apply"),
        );
    }
    let apply_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let bytes: usize = updates.iter().map(|u| u.wire(false).len()).sum();
    let encode_s = t.elapsed().as_secs_f64();

    let n = messages.max(1) as f64;
    StageCost {
        messages,
        intersections,
        decode_us: decode_s * 1e6 / n,
        apply_us: apply_s * 1e6 / n,
        encode_us: encode_s * 1e6 / n,
        updates_per_message: updates.len() as f64 / n,
        update_bytes_per_message: bytes as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stage_cost_decodes_and_applies_every_message() {
        let c = super::measure(3000, 100);
        assert_eq!(c.messages, 3000);
        // One intersection update per message, and feed updates now and then.
        assert!(c.updates_per_message >= 1.0, "{c:?}");
        assert!(c.update_bytes_per_message > 300.0, "{c:?}");
        assert!(
            c.decode_us > 0.0 && c.apply_us > 0.0 && c.encode_us > 0.0,
            "{c:?}"
        );
    }
}
