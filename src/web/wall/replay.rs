//! The room as it was: `GET /api/state?at=T` rebuilds the state at `T` from
//! the store alone (never the live state, never the bus) and answers it in
//! the live `/api/state`'s shape, with `"at"`. The rebuild is the restart's:
//! the day's events (the day of each city's zone, from the earliest) and the
//! latest of everything else up to `T`, applied to a state of its own, its
//! staleness judged at `T`.
//!
//! A replay asks about once a second, a few seconds further each time: the
//! state rebuilt for one answer is kept as a checkpoint ([`Checkpoints`]),
//! and the next answer goes on from the nearest checkpoint before it with
//! the messages in between (`StoreHandle::between`) instead of the day
//! again; such an answer says `"advanced_from"`. Checkpoints are kept only
//! for moments [`SETTLED_S`] or more in the past, when the store has what
//! happened by then (a message that arrives later than that with an older
//! source time, e.g. a node's share of the bus held by the broker while the
//! node was down, is not in a replay going on from an earlier checkpoint;
//! jumping to a moment rebuilds it).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::hub::StateView;
use crate::state::{CityState, Update, UpdateKind};
use crate::web::{ApiError, WebContext};

/// Rebuilds at most this many past states at once: each reads a day of
/// events; more requests wait their turn rather than load the database.
static REBUILDS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Accepted this far ahead of the server's clock (screens' clocks drift).
const FUTURE_SLACK_S: i64 = 5;

/// The entities of a rebuilt state, by kind and key, each its latest update.
type Entities = HashMap<(UpdateKind, Arc<str>), Arc<Update>>;

/// A state rebuilt at a past moment, kept to go on from.
struct Checkpoint {
    at: DateTime<Utc>,
    /// The day (from the earliest of the zones' midnights) it was rebuilt from.
    day_start: DateTime<Utc>,
    city: CityState,
    latest: Entities,
    kept: std::time::Instant,
}

/// Past states rebuilt for replays, the most recent few (one per replaying
/// screen, about): each is taken out while a rebuild goes on from it.
#[derive(Default)]
pub struct Checkpoints {
    kept: std::sync::Mutex<Vec<Checkpoint>>,
}

/// Checkpoints kept at most; the least recently kept goes first.
const CHECKPOINTS_KEPT: usize = 4;
/// A checkpoint is not used after this long unused (its memory is a whole city's state).
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(300);
/// Going on from a checkpoint reads every message in between (a restore
/// reads each entity's newest): past this span, rebuild instead.
const ADVANCE_MAX: chrono::Duration = chrono::Duration::minutes(10);
/// Moments less than this far in the past are not kept as checkpoints.
pub const SETTLED_S: i64 = 5;

impl Checkpoints {
    /// The nearest checkpoint at or before `at` on the same day, taken out.
    fn take(&self, day_start: DateTime<Utc>, at: DateTime<Utc>) -> Option<Checkpoint> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|c| c.kept.elapsed() < CHECKPOINT_IDLE);
        let i = (0..kept.len())
            .filter(|&i| {
                let c = &kept[i];
                c.day_start == day_start && c.at <= at && at - c.at <= ADVANCE_MAX
            })
            .max_by_key(|&i| kept[i].at)?;
        Some(kept.swap_remove(i))
    }

    fn keep(&self, c: Checkpoint) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= CHECKPOINTS_KEPT {
            if let Some(oldest) = (0..kept.len()).min_by_key(|&i| kept[i].kept) {
                kept.swap_remove(oldest);
            }
        }
        kept.push(c);
    }
}

/// The state at `at`, encoded as `GET /api/state` encodes the live one.
pub async fn state_at(
    ctx: &WebContext,
    at: DateTime<Utc>,
    personal: bool,
) -> Result<String, ApiError> {
    if at > Utc::now() + chrono::Duration::seconds(FUTURE_SLACK_S) {
        return Err(ApiError::bad_request(format!(
            "at={} is in the future: the room can only be replayed up to now",
            at.to_rfc3339()
        )));
    }
    let _turn = REBUILDS
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("shutting down"))?;
    let zones = ctx.settings.cities.zones();
    let day_start = zones.earliest_day_start(at);
    let from = ctx.replay.take(day_start, at);
    let read = match &from {
        Some(c) => ctx.store.between(c.at, at).await,
        None => ctx.store.restore_at(day_start, at).await,
    };
    let no_database = || {
        ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "this node keeps its history in bounded memory only: replay needs the database (database.url)",
        )
    };
    let messages = read
        .map_err(|e| ApiError::unavailable(format!("reading the store: {e}")))?
        .ok_or_else(no_database)?;
    let (state, traffic) = (ctx.settings.state.clone(), ctx.settings.traffic.clone());
    let (json, checkpoint) = actix_web::web::block(move || {
        let advanced_from = from.as_ref().map(|c| c.at);
        let (mut city, mut latest) = match from {
            Some(c) => (c.city, c.latest),
            None => (
                CityState::new(state)
                    .with_traffic(traffic)
                    .with_zones(zones),
                Entities::new(),
            ),
        };
        let mut keep = |u: Update| {
            if u.kind.is_event() {
                return;
            }
            let key = (u.kind, u.key.clone());
            if u.is_removal() {
                latest.remove(&key);
            } else {
                latest.insert(key, Arc::new(u));
            }
        };
        for (topic, msg, rx) in messages {
            if let Ok(updates) = city.apply(&topic, &msg, rx) {
                updates.into_iter().for_each(&mut keep);
            }
        }
        city.tick(at).into_iter().for_each(&mut keep);
        let json = StateView {
            seq: 0,
            entities: latest.values().cloned().collect(),
        }
        .to_json_at(personal, at, advanced_from);
        let checkpoint = Checkpoint {
            at,
            day_start,
            city,
            latest,
            kept: std::time::Instant::now(),
        };
        (json, checkpoint)
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("rebuilding the state: {e}")))?;
    if at <= Utc::now() - chrono::Duration::seconds(SETTLED_S) {
        ctx.replay.keep(checkpoint);
    }
    Ok(json)
}
