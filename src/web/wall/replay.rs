//! The room as it was: `GET /api/state?at=T` rebuilds the state at `T` from
//! the store alone (never the live state, never the bus) and answers it in
//! the live `/api/state`'s shape, with `"at"`. The rebuild is the restart's:
//! the day's events (the day of each city's zone, from the earliest) and the
//! latest of everything else up to `T`, applied to a state of its own, its
//! staleness judged at `T`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::hub::StateView;
use crate::state::{CityState, UpdateKind};
use crate::web::{ApiError, WebContext};

/// Rebuilds at most this many past states at once: each reads a day of
/// events; more requests wait their turn rather than load the database.
static REBUILDS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Accepted this far ahead of the server's clock (screens' clocks drift).
const FUTURE_SLACK_S: i64 = 5;

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
    let messages = ctx
        .store
        .restore_at(zones.earliest_day_start(at), at)
        .await
        .map_err(|e| ApiError::unavailable(format!("reading the store: {e}")))?
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "this node keeps its history in bounded memory only: replay needs the database (database.url)",
            )
        })?;
    let (state, traffic) = (ctx.settings.state.clone(), ctx.settings.traffic.clone());
    actix_web::web::block(move || {
        let mut city = CityState::new(state)
            .with_traffic(traffic)
            .with_zones(zones);
        let mut latest: HashMap<(UpdateKind, Arc<str>), Arc<crate::state::Update>> = HashMap::new();
        let mut keep = |u: crate::state::Update| {
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
        StateView {
            seq: 0,
            entities: latest.into_values().collect(),
        }
        .to_json_at(personal, at)
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("rebuilding the state: {e}")))
}
