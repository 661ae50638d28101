//! The wall's area: the live state (`/api/state`, `/ws`), the scenario's
//! geometry, history and charts. Everyone who may see the room reads it;
//! callers' personal data go only to those allowed them.

pub mod charts;
pub mod history;
pub mod replay;
pub mod session;
pub mod ws;

use crate::web::routes::{get, page, Route, Rule};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};

use super::{ApiError, WebContext};
use crate::hub::HubHandle;
use crate::identity::{Permission, Person};

/// `GET /api/state`'s last answer, shared by the requests that come within
/// [`STATE_REUSE`] of it: the hub hands over pointers to its entities and the
/// encoding runs on a blocking thread, one at a time, so that clients polling
/// the state hold back neither the hub nor the web workers' sockets.
#[derive(Default)]
pub struct StateCache {
    /// Without callers' personal data.
    public: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
    /// With them.
    personal: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

/// How long one encoding of the state answers further requests. The
/// answer carries its `seq` and `server_time`; the screens follow the
/// state live over `/ws`, not by polling this.
const STATE_REUSE: Duration = Duration::from_millis(250);

impl StateCache {
    async fn get(&self, hub: &HubHandle, personal: bool) -> Result<Bytes, ApiError> {
        let mut last = if personal {
            self.personal.lock().await
        } else {
            self.public.lock().await
        };
        if let Some((at, body)) = last.as_ref() {
            if at.elapsed() < STATE_REUSE {
                return Ok(body.clone());
            }
        }
        let view = hub
            .state_view()
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let body = Bytes::from(
            web::block(move || view.to_json(personal))
                .await
                .map_err(|e| ApiError::unavailable(format!("encoding the state: {e}")))?,
        );
        *last = Some((Instant::now(), body.clone()));
        Ok(body)
    }
}

/// `?at=T` (RFC 3339): the state at `T`, rebuilt from the store.
#[derive(serde::Deserialize)]
struct StateQuery {
    at: Option<String>,
}

#[get("/api/state")]
async fn state(
    ctx: web::Data<WebContext>,
    person: Person,
    q: web::Query<StateQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(at) = &q.at {
        // `+07:00` written unescaped in a query string reads as " 07:00".
        let at = at.trim().replace(' ', "+");
        let at = chrono::DateTime::parse_from_rfc3339(&at)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "at={at:?} is not an RFC 3339 time (e.g. 2026-12-05T08:12:00+07:00): {e}"
                ))
            })?
            .with_timezone(&chrono::Utc);
        let body = replay::state_at(&ctx, at, person.may(Permission::PersonalData)).await?;
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body));
    }
    let body = ctx
        .state_cache
        .get(&ctx.hub, person.may(Permission::PersonalData))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[derive(serde::Deserialize)]
struct ScenarioQuery {
    city: Option<String>,
}

#[get("/api/scenario")]
async fn scenario(
    ctx: web::Data<WebContext>,
    q: web::Query<ScenarioQuery>,
) -> Result<HttpResponse, ApiError> {
    // `?city=`: that city's geometry (imported, or the simulated city's),
    // never another city's; without it the default (the simulated city's,
    // else the most recent import). `null` when there is none: the screens
    // draw no map then, and a wall's console stays free of 404s.
    let map = match q.city.as_deref() {
        Some(c) => ctx.city_maps.get(c),
        None => ctx.scenario.as_ref(),
    };
    Ok(HttpResponse::Ok().json(map))
}

/// The services overview: every service application, grouped, with the
/// live feed of their events.
#[get("/services")]
async fn services_page() -> HttpResponse {
    crate::web::assets::serve("services.html")
}

/// Everyone who may see the room (personal data are filtered by role inside).
pub const ROUTES: &[Route] = &[
    page("/", Rule::Wall),
    page("/services", Rule::Wall),
    get("/api/state", Rule::Wall),
    get("/ws", Rule::Wall),
    get("/api/scenario", Rule::Wall),
    get("/api/history/atcs/{city}/{intersection}", Rule::Wall),
    get("/api/history/calls/{city}", Rule::Wall),
    get("/api/history/units/{city}", Rule::Wall),
    get("/api/history/kpi/{city}/{service}/{metric}", Rule::Wall),
    get("/api/history/commands/{city}/{intersection}", Rule::Wall),
    get("/api/charts/kpi/{city}/{service}/{metric}.svg", Rule::Wall),
    get("/api/charts/atcs/{city}/{intersection}.svg", Rule::Wall),
    get("/api/charts/calls/{city}.svg", Rule::Wall),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(state)
        .service(scenario)
        .service(services_page)
        .configure(history::configure)
        .configure(charts::configure)
        .configure(ws::configure);
}
