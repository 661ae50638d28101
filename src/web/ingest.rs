//! Service applications without an MQTT client: their events and KPI
//! samples over HTTP, each request with a token scoped to one city and one
//! service (`kendali apps add SERVICE --city CITY`).
//!
//! A message is validated as ingest validates the bus's, then published onto
//! the bus, never written into the state: it comes back through ingest like
//! any other, so the state, the store and every screen take it the same
//! way. `202 Accepted` means the bus client has it; a retry with the same
//! `event_id` is harmless (ingest keeps the first, the store writes by event
//! id). A refused body is answered with its dead-letter reason and kept in
//! the dead-letter (`GET /api/deadletter`) like a refused bus message.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::routes::{post, Route, Rule};
use super::{ApiError, WebContext};
use crate::contract::{decode, Message, RejectReason, Rejection, Topic};
use crate::identity::directory::AppToken;
use crate::ingest::deadletter::DeadLetter;

#[post("/api/ingest/{city}/apps/{service}/events")]
async fn app_event(
    ctx: web::Data<WebContext>,
    app: AppToken,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let topic = |city: &str, service: &str| format!("city/{city}/apps/{service}/events");
    relay(&ctx, &app, path.into_inner(), topic, body).await
}

#[post("/api/ingest/{city}/kpi/{service}")]
async fn kpi(
    ctx: web::Data<WebContext>,
    app: AppToken,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let topic = |city: &str, service: &str| format!("city/{city}/kpi/{service}");
    relay(&ctx, &app, path.into_inner(), topic, body).await
}

/// Checks the token's scope, validates, publishes.
async fn relay(
    ctx: &WebContext,
    app: &AppToken,
    (city, service): (String, String),
    topic: impl Fn(&str, &str) -> String,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if app.city != city || app.service != service {
        return Err(ApiError::forbidden(format!(
            "this token (id {}) is for service {:?} of city {:?}: it cannot publish for service {service:?} of city {city:?}",
            app.id, app.service, app.city
        )));
    }
    // One application cannot flood the bus (`ingest.http_per_minute`).
    if let Err(wait) = ctx.app_messages.take(&app.id) {
        ctx.metrics.http_ingest_throttled.inc();
        return Err(ApiError::too_many(
            format!(
                "token {} sent more than ingest.http_per_minute messages: wait, then send again (with the same event_id)",
                app.id
            ),
            wait,
        ));
    }
    let topic = topic(&city, &service);
    let topic = topic.as_str();
    // Read no further than the contract's limit.
    let max = ctx.limits.max_payload;
    let body = super::read_body(body, max).await?;
    let now = Utc::now();
    let decoded = if body.len() > max {
        Err(Rejection::new(
            RejectReason::PayloadTooLarge,
            format!("the body is over the limit of {max} bytes (ingest.max_payload_bytes)"),
        ))
    } else {
        decode(topic, &body, &ctx.limits, now)
    };
    let (parsed, msg) = match decoded {
        Ok(ok) => ok,
        Err(mut rejection) => {
            rejection.detail = format!(
                "over HTTP (application token {}): {}",
                app.id, rejection.detail
            );
            ctx.deadletters
                .push(DeadLetter::new(topic.as_bytes(), &body, &rejection, now));
            let status = match rejection.reason {
                RejectReason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return Ok(HttpResponse::build(status).json(json!({
                "error": rejection.detail,
                "reason": rejection.reason,
            })));
        }
    };
    if !ctx.ingest.main_connected() {
        return Err(ApiError::unavailable(
            "the broker is unreachable: nothing was published; send it again (with the same event_id) later",
        ));
    }
    if let Err(e) = ctx.outbox.send(&parsed, body.to_vec()).await {
        return Err(ApiError::unavailable(format!(
            "not published ({e}); send it again (with the same event_id) later"
        )));
    }
    ctx.metrics
        .http_ingest
        .with_label_values(&[parsed.family().as_str()])
        .inc();
    Ok(HttpResponse::Accepted().json(accepted(&parsed, &msg)))
}

/// The answer to an accepted message: where it went and what identifies it
/// (an app event's id; a KPI sample's metric and time, which the store keys
/// it by).
fn accepted(topic: &Topic, msg: &Message) -> serde_json::Value {
    match msg {
        Message::AppEvent(m) => json!({ "topic": topic.to_string(), "event_id": m.event_id }),
        Message::KpiSample(m) => json!({
            "topic": topic.to_string(),
            "metric": m.metric,
            "ts": m.ts.to_rfc3339(),
        }),
        _ => json!({ "topic": topic.to_string() }),
    }
}

/// Service applications, each with its own token.
pub const ROUTES: &[Route] = &[
    post("/api/ingest/{city}/apps/{service}/events", Rule::App),
    post("/api/ingest/{city}/kpi/{service}", Rule::App),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(app_event).service(kpi);
}
