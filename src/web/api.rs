//! The integration API: the dead-letter (what the bus sent that Kendali
//! refused, and why) and the contract's JSON Schemas.

use super::routes::{get, Route, Rule};
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;

use super::{ApiError, WebContext};
use crate::contract::{schema, MessageKind, RejectReason};
use crate::identity::{Permission, Person};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    limit: Option<usize>,
    reason: Option<String>,
}

#[get("/api/deadletter")]
async fn deadletter(
    ctx: web::Data<WebContext>,
    person: Person,
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
    let mut entries = ctx.deadletters.recent(limit, reason);
    // A refused call event still holds its caller.
    if !person.may(Permission::PersonalData) {
        for e in entries.iter_mut().filter(|e| e.topic.contains("/calls/")) {
            e.payload = "(withheld: a call event may hold a caller's personal data)".into();
        }
    }
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

/// The schemas for anyone who sees the room; the dead letters (raw
/// payloads) for supervisors and admins.
pub const ROUTES: &[Route] = &[
    get("/api/contract/schemas/{kind}", Rule::Wall),
    get("/api/deadletter", Rule::May(Permission::Audit)),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(deadletter).service(contract_schema);
}
