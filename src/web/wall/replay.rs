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
//!
//! A moment no checkpoint in memory is near (a replay's first) starts from
//! the newest stored checkpoint of its day before it ([`write_checkpoints`]
//! stores one every `database.checkpoint_every_s`): what the day's events
//! had built by then, the events after it, and the newest of everything
//! else up to the moment, as a restart reads it. Such an answer says
//! `"checkpoint"`. A checkpoint is taken [`CHECKPOINT_SETTLE_S`] in the past;
//! an event stored later than that with an older source time is not in
//! replays that start from it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::contract::Message;
use crate::hub::{Origin, StateView};
use crate::state::city::DayPart;
use crate::state::{CityState, Update, UpdateKind};
use crate::store::StoreHandle;
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

/// Where a rebuild starts.
enum Start {
    Memory(Box<Checkpoint>),
    Stored(DateTime<Utc>, Box<DayPart>),
    Day,
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
    let start = match ctx.replay.take(day_start, at) {
        Some(c) => Start::Memory(Box::new(c)),
        None => match stored(&ctx.store, day_start, at).await {
            Some((t, part)) => Start::Stored(t, Box::new(part)),
            None => Start::Day,
        },
    };
    let read = match &start {
        Start::Memory(c) => ctx.store.between(c.at, at).await,
        Start::Stored(t, _) => ctx.store.after_checkpoint(day_start, *t, at).await,
        Start::Day => ctx.store.restore_at(day_start, at).await,
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
        let fresh = || {
            CityState::new(state)
                .with_traffic(traffic)
                .with_zones(zones)
        };
        let (origin, mut city, mut latest, first) = match start {
            Start::Memory(c) => {
                let c = *c;
                (Origin::Advanced(c.at), c.city, c.latest, Vec::new())
            }
            Start::Stored(t, part) => {
                let (city, updates) = fresh().with_day_part(*part);
                (Origin::Checkpoint(t), city, Entities::new(), updates)
            }
            Start::Day => (Origin::Day, fresh(), Entities::new(), Vec::new()),
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
        first.into_iter().for_each(&mut keep);
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
        .to_json_at(personal, at, origin);
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

/// The newest stored checkpoint of the day from `day_start` at or before
/// `at`, read back; none if it cannot be (a rebuild from the day's start
/// is then only slower).
async fn stored(
    store: &StoreHandle,
    day_start: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DayPart)> {
    let (t, bytes) = match store.checkpoint_before(day_start, at).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "reading the replay checkpoints: rebuilding from the day's start");
            return None;
        }
    };
    match tokio::task::spawn_blocking(move || serde_json::from_slice::<DayPart>(&bytes)).await {
        Ok(Ok(part)) => Some((t, part)),
        Ok(Err(e)) => {
            tracing::warn!(at = %t, error = %e, "a replay checkpoint does not read back: rebuilding from the day's start");
            None
        }
        Err(_) => None,
    }
}

/// A checkpoint is taken this far in the past, so that what happened by
/// then is in the store (a QoS 1 message is stored within a flush or two).
pub const CHECKPOINT_SETTLE_S: i64 = 30;

/// What [`write_checkpoints`] builds its states with.
pub struct CheckpointWriter {
    pub store: StoreHandle,
    pub state: crate::config::StateSettings,
    pub traffic: crate::domain::traffic::TrafficSettings,
    pub zones: crate::domain::Zones,
    /// How often; zero writes none.
    pub every: std::time::Duration,
    /// Who writes (`mqtt.client_id`), kept in each row.
    pub writer: String,
}

/// Stores a replay checkpoint every `every` while this node runs the rules
/// (`rules`: one node of a shared group; always when alone): the state's
/// [`DayPart`] [`CHECKPOINT_SETTLE_S`] ago, advanced from the one before by
/// the events in between (after a restart, from the newest stored; at the
/// day's first, from the day's events).
pub async fn write_checkpoints(
    w: CheckpointWriter,
    rules: tokio::sync::watch::Receiver<bool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if w.every.is_zero() || w.store.pool().is_none() {
        return;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + w.every, w.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last one written: its day, its moment and its state.
    let mut last: Option<(DateTime<Utc>, DateTime<Utc>, CityState)> = None;
    while crate::store::leader::next_tick(&mut tick, &mut shutdown).await {
        if !*rules.borrow() {
            // Another node writes them: start again from the stored ones.
            last = None;
            continue;
        }
        let at = Utc::now() - chrono::Duration::seconds(CHECKPOINT_SETTLE_S);
        match write_one(&w, at, last.take()).await {
            Ok(written) => last = Some(written),
            Err(e) => tracing::warn!(error = %e, "writing a replay checkpoint"),
        }
    }
}

/// Builds and stores the checkpoint at `at`; returns its day, moment and state.
async fn write_one(
    w: &CheckpointWriter,
    at: DateTime<Utc>,
    last: Option<(DateTime<Utc>, DateTime<Utc>, CityState)>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, CityState), String> {
    let day_start = w.zones.earliest_day_start(at);
    let fresh = || {
        CityState::new(w.state.clone())
            .with_traffic(w.traffic.clone())
            .with_zones(w.zones.clone())
    };
    let (city, from) = match last.filter(|l| l.0 == day_start && l.1 < at) {
        Some((_, from, city)) => (city, Some(from)),
        None => match stored(&w.store, day_start, at).await {
            Some((t, part)) => (fresh().with_day_part(part).0, Some(t)),
            None => (fresh(), None),
        },
    };
    let messages: Vec<_> = match from {
        Some(from) => w.store.events_between(from, at).await,
        None => w.store.restore_at(day_start, at).await.map(|all| {
            all.map(|all| {
                all.into_iter()
                    .filter(|(_, m, _)| matches!(m, Message::CallEvent(_) | Message::AppEvent(_)))
                    .collect()
            })
        }),
    }
    .map_err(|e| format!("reading the store: {e}"))?
    .unwrap_or_default();
    let (city, bytes, calls) = tokio::task::spawn_blocking(move || {
        let mut city = city;
        for (topic, msg, rx) in messages {
            let _ = city.apply(&topic, &msg, rx);
        }
        let part = city.day_part();
        let bytes = serde_json::to_vec(&part);
        (city, bytes, part.calls())
    })
    .await
    .map_err(|e| format!("building it: {e}"))?;
    let bytes = bytes.map_err(|e| format!("encoding it: {e}"))?;
    w.store
        .save_checkpoint(day_start, at, &w.writer, calls, &bytes)
        .await
        .map_err(|e| format!("storing it: {e}"))?;
    tracing::debug!(%at, calls, bytes = bytes.len(), "replay checkpoint stored");
    Ok((day_start, at, city))
}
