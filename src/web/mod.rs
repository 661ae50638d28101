//! The web server, one module per area, each with its `configure`: the
//! wall (live state, `/ws`, history, charts), traffic (commands), admin
//! (users, displays, the audit), auth (login), the integration api, ops
//! (health, metrics) and the embedded screens. Every request passes the gate
//! first ([`gate`]): it finds the request's route in the route table
//! ([`routes`]), settles who is asking, and lets through only those the
//! route's rule admits.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod deadline;
pub mod dispatch;
pub mod gate;
pub mod ingest;
pub mod openapi;
pub mod ops;
pub mod reports;
pub mod routes;
pub mod traffic;
pub mod wall;

use std::sync::Arc;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;

use crate::config::Settings;
use crate::contract::Limits;
use crate::hub::HubHandle;
use crate::identity::audit::Entry;
use crate::identity::directory::{Directory, Timeouts};
use crate::identity::throttle::{ActionLimit, LoginThrottle};
use crate::ingest::deadletter::DeadLetters;
use crate::ingest::IngestStatus;
use crate::metrics::Metrics;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kendali_session";

/// What every handler can reach.
pub struct WebContext {
    /// The alert engine (acknowledge, shelve).
    pub alerts: crate::alerts::AlertsHandle,
    pub settings: Settings,
    pub hub: HubHandle,
    pub deadletters: DeadLetters,
    pub metrics: Arc<Metrics>,
    pub ingest: Arc<IngestStatus>,
    pub limits: Limits,
    /// The scenario geometry served to the screens, when known.
    pub scenario: Option<serde_json::Value>,
    /// Each city's geometry (the simulated city's scenario, the imported
    /// cities' maps): `/api/scenario?city=`.
    pub city_maps: std::collections::BTreeMap<String, serde_json::Value>,
    /// History queries.
    pub store: crate::store::StoreHandle,
    /// `GET /api/state`'s recent answer.
    pub state_cache: wall::StateCache,
    /// Past states rebuilt for replays, to go on from (`GET /api/state?at=`).
    pub replay: wall::replay::Checkpoints,
    /// Users, displays, sessions, the audit.
    pub directory: Directory,
    pub timeouts: Timeouts,
    pub login_throttle: LoginThrottle,
    /// Operator actions per user.
    pub actions: ActionLimit,
    /// HTTP ingest per application token (`ingest.http_per_minute`).
    pub app_messages: ActionLimit,
    /// Dispatch claims in flight and done actions, for retries.
    pub desk: dispatch::DispatchDesk,
    /// The traffic desk: per-junction limits, automatic mode.
    pub traffic: std::sync::Arc<crate::traffic::TrafficDesk>,
    /// Kendali's own bus connection, for operator actions: traffic commands
    /// (audited, only while the bus is up) and the dispatchers' events.
    pub outbox: crate::traffic::Outbox,
    /// The scenario's road network, built on first use.
    pub road_net: std::sync::Arc<crate::domain::route::CityRoads>,
    /// The route table, compiled.
    pub routes: routes::Table,
    /// Networks and names the gate checks.
    pub access: gate::AccessSettings,
}

impl WebContext {
    /// The road network of `city`: the scenario's roads when it is the
    /// scenario's city, else none (estimates fall back to straight lines).
    pub fn roads(&self, city: &str) -> std::sync::Arc<crate::domain::route::RoadNet> {
        self.road_net.of(city)
    }

    /// Appends to the audit; false (logged) when the audit could not take it.
    pub async fn record(&self, entry: Entry) -> bool {
        match self.directory.audit(entry).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "the audit could not be written");
                false
            }
        }
    }
}

/// An API error: a status and a message, as JSON.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `Retry-After` for a 429.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn too_many(message: impl Into<String>, wait: std::time::Duration) -> ApiError {
        ApiError {
            retry_after: Some(wait),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    status: u16,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(wait) = self.retry_after {
            r.insert_header((
                actix_web::http::header::RETRY_AFTER,
                wait.as_secs().max(1).to_string(),
            ));
        }
        r.json(ErrorBody {
            error: &self.message,
            status: self.status.as_u16(),
        })
    }
}

/// Reads a body of at most `max` bytes; one chunk more tells it was longer
/// (the caller refuses it). A body that does not arrive in time is a 408.
pub(crate) async fn read_body(
    mut payload: actix_web::web::Payload,
    max: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if deadline::timed_out(&e) {
                ApiError::timeout(e.to_string())
            } else {
                ApiError::bad_request(format!("reading the body: {e}"))
            }
        })?;
        body.extend_from_slice(&chunk);
        if body.len() > max {
            break;
        }
    }
    Ok(body.freeze())
}

/// Turns actix's own extractor errors (bad query, bad JSON body) into JSON 400s.
pub fn json_error_handlers(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.app_data(
        actix_web::web::QueryConfig::default()
            .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
    )
    .app_data(
        actix_web::web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| match &e {
                actix_web::error::JsonPayloadError::Payload(p) if deadline::timed_out(p) => {
                    ApiError::timeout(p.to_string()).into()
                }
                _ => ApiError::bad_request(e.to_string()).into(),
            }),
    )
    .app_data(
        // Raw bodies (the sign-in's): a body that does not arrive in time is a 408.
        actix_web::web::PayloadConfig::default().limit(64 * 1024),
    )
    .app_data(
        actix_web::web::PathConfig::default()
            .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
    );
}
