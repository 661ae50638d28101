//! The web server: screens (embedded assets), the JSON API, health and
//! metrics, and the `/ws` upgrade. One module per URL area, each with a
//! `configure` function; `app.rs` chains them.

pub mod api;
pub mod assets;
pub mod charts;
pub mod deadline;
pub mod history;
pub mod ops;
pub mod ws;

use std::sync::Arc;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;

use crate::bus::BusClient;
use crate::config::Settings;
use crate::contract::Limits;
use crate::hub::HubHandle;
use crate::ingest::deadletter::DeadLetters;
use crate::ingest::IngestStatus;
use crate::metrics::Metrics;

/// What every handler can reach.
pub struct WebContext {
    pub settings: Settings,
    pub hub: HubHandle,
    pub deadletters: DeadLetters,
    pub metrics: Arc<Metrics>,
    pub ingest: Arc<IngestStatus>,
    /// Kendali's own bus connection, for operator commands.
    pub bus: BusClient,
    pub limits: Limits,
    /// The scenario geometry served to the screens, when known.
    pub scenario: Option<serde_json::Value>,
    /// History queries.
    pub store: crate::store::StoreHandle,
    /// The server's own origins (`http://host:port`), always allowed on `/ws`.
    pub own_origins: Vec<String>,
    /// `GET /api/state`'s recent answer.
    pub state_cache: api::StateCache,
}

/// An API error: a status and a message, as JSON.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
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
        HttpResponse::build(self.status).json(ErrorBody {
            error: &self.message,
            status: self.status.as_u16(),
        })
    }
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
        actix_web::web::PathConfig::default()
            .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
    );
}
