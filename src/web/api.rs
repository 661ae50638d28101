//! The JSON API: the live state, the dead-letter, the contract's schemas, the
//! scenario geometry, and operator commands to traffic controllers (which
//! Kendali publishes on the bus, so every screen and the field agree).

use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, WebContext};
use crate::bus::Qos;
use crate::contract::validate::validate_outgoing;
use crate::contract::{
    schema, Command, CommandAction, ControllerMode, Message, MessageKind, RejectReason, Topic,
};
use crate::hub::{HubHandle, Known};
use crate::state::UpdateKind;

/// `GET /api/state`'s last answer, shared by the requests that come within
/// [`STATE_REUSE`] of it: the hub hands over pointers to its entities and the
/// encoding runs on a blocking thread, one at a time, so that clients polling
/// the state hold back neither the hub nor the web workers' sockets.
#[derive(Default)]
pub struct StateCache {
    last: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

/// How long one encoding of the state answers further requests. The
/// answer carries its `seq` and `server_time`; the screens follow the
/// state live over `/ws`, not by polling this.
const STATE_REUSE: Duration = Duration::from_millis(250);

impl StateCache {
    async fn get(&self, hub: &HubHandle) -> Result<Bytes, ApiError> {
        let mut last = self.last.lock().await;
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
            web::block(move || view.to_json())
                .await
                .map_err(|e| ApiError::unavailable(format!("encoding the state: {e}")))?,
        );
        *last = Some((Instant::now(), body.clone()));
        Ok(body)
    }
}

#[get("/api/state")]
async fn state(ctx: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    let body = ctx.state_cache.get(&ctx.hub).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    limit: Option<usize>,
    reason: Option<String>,
}

#[get("/api/deadletter")]
async fn deadletter(
    ctx: web::Data<WebContext>,
    q: web::Query<DeadLetterQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request("limit must be 1..=10000"));
    }
    let reason = match &q.reason {
        None => None,
        Some(r) => Some(
            RejectReason::ALL
                .into_iter()
                .find(|x| x.as_str() == r)
                .ok_or_else(|| ApiError::bad_request(format!("unknown reason {r:?}")))?,
        ),
    };
    let entries = ctx.deadletters.recent(limit, reason);
    let counts: serde_json::Map<String, serde_json::Value> = RejectReason::ALL
        .into_iter()
        .map(|r| {
            (
                r.as_str().to_owned(),
                ctx.metrics
                    .rejected
                    .with_label_values(&[r.as_str()])
                    .get()
                    .into(),
            )
        })
        .filter(|(_, v): &(String, serde_json::Value)| v.as_u64() != Some(0))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "counts": counts, "entries": entries })))
}

#[get("/api/contract/schemas/{kind}")]
async fn contract_schema(kind: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let k = kind.trim_end_matches(".schema.json");
    let kind = MessageKind::parse(k)
        .ok_or_else(|| ApiError::not_found(format!("no message kind {k:?}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/schema+json")
        .body(schema::schema_text(kind)))
}

#[get("/api/scenario")]
async fn scenario(ctx: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    // `null` when no scenario is loaded (no simulator): the screens draw no
    // map then, and a wall's console stays free of 404s.
    Ok(HttpResponse::Ok().json(&ctx.scenario))
}

/// Who is watching. A placeholder until the sign-in area lands (which
/// replaces it): this server has no accounts yet, so every screen is the
/// anonymous wall. Answered rather than left to 404, so that a screen's
/// console stays free of errors (the browser logs every 404).
#[get("/api/me")]
async fn me() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "username": null,
        "role": "anonymous",
        "display": true,
    }))
}

/// An operator command as the consoles send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    action: CommandAction,
    approach: Option<String>,
    seconds: Option<f64>,
    plan: Option<String>,
    mode: Option<ControllerMode>,
    issued_by: String,
}

/// How long publishing a command may wait for room in the bus client's
/// request queue (full only while the broker is unreachable).
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

#[post("/api/atcs/{city}/{intersection}/command")]
async fn command(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String)>,
    req: web::Json<CommandRequest>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let topic = Topic::parse(&format!("city/{city}/atcs/{intersection}/command"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let req = req.into_inner();
    let cmd = Command {
        command_id: Uuid::new_v4(),
        ts: Utc::now().with_timezone(&crate::domain::wib()),
        action: req.action,
        approach: req.approach,
        seconds: req.seconds,
        plan: req.plan,
        mode: req.mode,
        issued_by: req.issued_by,
    };
    let msg = Message::Command(Box::new(cmd.clone()));
    let bytes = validate_outgoing(&topic, &msg, &ctx.limits)
        .map_err(|r| ApiError::bad_request(r.to_string()))?;
    // A command for a junction no controller has spoken for would be
    // published to nobody, and shown pending for ever.
    let key = format!("{city}/{intersection}");
    match ctx
        .hub
        .lookup(UpdateKind::Intersection, &city, &key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    {
        Known::Entity => {}
        Known::CityOnly => {
            return Err(ApiError::not_found(format!(
            "no intersection {intersection:?} in city {city:?}: no info or state has come from it"
        )))
        }
        Known::Nothing => {
            return Err(ApiError::not_found(format!(
                "no intersection of city {city:?} is known: no info or state has come from it"
            )))
        }
    }
    // Published only while the bus is up: a command queued during an outage
    // would reach the controller minutes later, after the operator has
    // acted otherwise.
    if !ctx.ingest.main_connected() {
        return Err(ApiError::unavailable(
            "could not publish the command: the broker is unreachable",
        ));
    }
    match tokio::time::timeout(
        PUBLISH_WAIT,
        ctx.bus
            .publish(topic.to_string(), Qos::AtLeastOnce, false, bytes),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ApiError::unavailable(format!(
                "could not publish the command: {e}"
            )))
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "could not publish the command: the bus client is not taking requests",
            ))
        }
    }
    tracing::info!(%topic, command_id = %cmd.command_id, issued_by = %cmd.issued_by, "operator command published");
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "topic": topic.to_string(), "command": cmd })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(state)
        .service(deadletter)
        .service(contract_schema)
        .service(scenario)
        .service(me)
        .service(command);
}
