//! The alerts area: the live alerts and their history (`GET /api/alerts`),
//! and the operators' transitions: acknowledge, shelve (with a reason, for
//! at most `alerts.shelve_max_min`), unshelve. The engine decides and
//! publishes each transition; it shows as done once it is back through
//! ingest (the answer here is 202, pending). Who acted comes from the
//! session, and every request, done or refused, is audited.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::routes::{get as get_route, post as post_route, Route, Rule};
use super::{gate, ApiError, WebContext};
use crate::alerts::{Act, ActError};
use crate::contract::{Alert, AlertRule, AlertState};
use crate::identity::audit::Entry;
use crate::identity::{Permission, Person};
use crate::state::UpdateKind;
use crate::store::history::{HistoryAnswer, HistoryQuery, RangeParams};

pub const ROUTES: &[Route] = &[
    get_route("/api/alerts", Rule::Wall),
    post_route(
        "/api/alerts/{alert_id}/ack",
        Rule::May(Permission::AcknowledgeAlerts),
    ),
    post_route(
        "/api/alerts/{alert_id}/shelve",
        Rule::May(Permission::AcknowledgeAlerts),
    ),
    post_route(
        "/api/alerts/{alert_id}/unshelve",
        Rule::May(Permission::AcknowledgeAlerts),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(ack)
        .service(shelve)
        .service(unshelve);
}

/// `GET /api/alerts` filters. Without `from`/`to`, the live alerts (not
/// back to normal); with them, every transition stored in that range.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    city: Option<String>,
    /// `active`, `unack` (active or cleared, not acknowledged), `shelved`, `suppressed`.
    state: Option<String>,
    /// At most this priority number (1: only the critical ones).
    priority: Option<u8>,
    rule: Option<String>,
    entity: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[get("/api/alerts")]
async fn list(
    ctx: web::Data<WebContext>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let rule = match q.rule.as_deref() {
        None => None,
        Some(r) => Some(AlertRule::parse(r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "rule {r:?} is not one of {}",
                AlertRule::ALL.map(AlertRule::as_str).join(", ")
            ))
        })?),
    };
    let state = q.state.as_deref();
    if let Some(s) = state {
        if !["active", "unack", "shelved", "suppressed"].contains(&s) {
            return Err(ApiError::bad_request(format!(
                "state {s:?} is not one of active, unack, shelved, suppressed"
            )));
        }
    }
    let keep = |a: &Alert| {
        rule.is_none_or(|r| a.rule == r)
            && q.priority.is_none_or(|p| a.priority <= p)
            && q.entity.as_deref().is_none_or(|e| a.entity == e)
            && match state {
                Some("active") => a.state.is_active(),
                Some("unack") => {
                    matches!(a.state, AlertState::ActiveUnack | AlertState::ClearedUnack)
                }
                Some("shelved") => a.shelved_until.is_some(),
                Some("suppressed") => a.suppressed,
                _ => true,
            }
    };
    if q.from.is_some() || q.to.is_some() {
        let Some(city) = q.city.clone() else {
            return Err(ApiError::bad_request("the alerts' history needs a city"));
        };
        let range = RangeParams {
            from: q.from.clone(),
            to: q.to.clone(),
            bucket: Some("1d".into()),
        }
        .resolve(Utc::now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let query = HistoryQuery::Alerts { city, range };
        query
            .check()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let HistoryAnswer::Alerts(all) = ctx
            .store
            .query(&query)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
        else {
            return Err(ApiError::unavailable("the store answered another question"));
        };
        let alerts: Vec<Alert> = all.into_iter().filter(|a| keep(a)).collect();
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "alerts": alerts })));
    }
    let updates = match &q.city {
        Some(c) => ctx.hub.all_of(UpdateKind::Alert, c).await,
        None => ctx.hub.all_of_every_city(UpdateKind::Alert).await,
    }
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut alerts: Vec<Alert> = updates
        .iter()
        .filter_map(|u| serde_json::from_str::<Alert>(u.value_json_for(false)).ok())
        .filter(|a| keep(a))
        .collect();
    alerts.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(a.raised_at.cmp(&b.raised_at))
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({ "alerts": alerts })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShelveRequest {
    reason: Option<String>,
    minutes: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UnshelveRequest {}

#[post("/api/alerts/{alert_id}/ack")]
async fn ack(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: AckRequest = optional_json(&body)?;
    if body.reason.as_ref().is_some_and(|r| r.len() > 300) {
        return Err(ApiError::bad_request("reason is at most 300 bytes"));
    }
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    let detail = serde_json::json!({ "reason": reason });
    transition(
        &ctx,
        &req,
        &person,
        &path,
        "alert_ack",
        detail,
        Act::Acknowledge { reason },
    )
    .await
}

#[post("/api/alerts/{alert_id}/shelve")]
async fn shelve(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
    body: web::Json<ShelveRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let max = ctx.settings.alerts.shelve_max_min;
    let detail = serde_json::json!({ "reason": body.reason, "minutes": body.minutes });
    let refuse = |msg: String| async {
        ctx.record(
            audit(&ctx, &req, &person, "alert_shelve", &path)
                .outcome("refused_bad_request")
                .detail(detail.clone()),
        )
        .await;
        Err(ApiError::bad_request(msg))
    };
    let reason = match body.reason.filter(|r| !r.trim().is_empty()) {
        Some(r) if r.len() <= 300 => r,
        Some(_) => return refuse("reason is at most 300 bytes".into()).await,
        None => return refuse("reason is required: say why the alert is shelved".into()).await,
    };
    let minutes = match body.minutes {
        Some(m) if (1..=max).contains(&m) => m,
        _ => return refuse(format!("minutes is required, 1..={max}")).await,
    };
    transition(
        &ctx,
        &req,
        &person,
        &path,
        "alert_shelve",
        detail.clone(),
        Act::Shelve { reason, minutes },
    )
    .await
}

#[post("/api/alerts/{alert_id}/unshelve")]
async fn unshelve(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let UnshelveRequest {} = optional_json(&body)?;
    transition(
        &ctx,
        &req,
        &person,
        &path,
        "alert_unshelve",
        serde_json::json!({}),
        Act::Unshelve,
    )
    .await
}

/// A body that may be left out (empty), but not wrong.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body: {e}")))
}

fn audit(ctx: &WebContext, req: &HttpRequest, person: &Person, action: &str, id: &str) -> Entry {
    let addr = gate::client_addr(ctx, req);
    Entry::new(person.name(), &person.roles_text(), &addr, action).entity(format!("alert:{id}"))
}

/// Checks the alert is known and within the person's cities and
/// districts, audits, then has the engine make the transition.
async fn transition(
    ctx: &WebContext,
    req: &HttpRequest,
    person: &Person,
    id: &str,
    action: &str,
    detail: serde_json::Value,
    act: Act,
) -> Result<HttpResponse, ApiError> {
    let entry = |outcome: &str| {
        audit(ctx, req, person, action, id)
            .outcome(outcome)
            .detail(detail.clone())
    };
    let Ok(alert_id) = Uuid::parse_str(id) else {
        ctx.record(entry("refused_bad_request")).await;
        return Err(ApiError::bad_request(format!("{id:?} is not an alert id")));
    };
    let live = ctx
        .hub
        .all_of_every_city(UpdateKind::Alert)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let current = live
        .iter()
        .filter(|u| u.key.ends_with(id))
        .find_map(|u| serde_json::from_str::<Alert>(u.value_json_for(false)).ok());
    let Some(current) = current else {
        ctx.record(entry("refused_unknown")).await;
        return Err(ApiError::not_found(format!(
            "no live alert {id}: it is back to normal, or never was"
        )));
    };
    let city = live
        .iter()
        .find(|u| u.key.ends_with(id))
        .map(|u| u.city.to_string())
        .unwrap_or_default();
    if !person.in_scope(&city, current.district.as_deref()) {
        ctx.record(entry("refused_scope")).await;
        return Err(ApiError::forbidden(
            "the alert is outside your cities and districts",
        ));
    }
    // Recorded before it happens: an action the audit cannot hold does not happen.
    if !ctx.record(entry("requested")).await {
        return Err(ApiError::unavailable(
            "could not record the request in the audit: nothing changed",
        ));
    }
    match ctx.alerts.act(alert_id, person.name(), act).await {
        Ok(a) => Ok(HttpResponse::Accepted().json(serde_json::json!({
            "alert_id": a.alert_id,
            "event_id": a.event_id,
            "state": "pending",
            "alert": a,
        }))),
        Err(e) => {
            let (outcome, err) = match &e {
                ActError::Unknown(_) => ("refused_unknown", ApiError::not_found(e.to_string())),
                ActError::Lifecycle(_) | ActError::ShelveTooLong(_) => {
                    ("refused_state", ApiError::conflict(e.to_string()))
                }
                ActError::Publish(_) | ActError::Gone => {
                    ("publish_failed", ApiError::unavailable(e.to_string()))
                }
            };
            ctx.record(entry(outcome)).await;
            Err(err)
        }
    }
}
