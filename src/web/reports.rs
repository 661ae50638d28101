//! The reports area (supervisors): the shift handover report as a
//! printable page (`/reports/shift`), the supervisors' page that opens it
//! and takes the handover (`/reports`), and the handover's acceptance
//! (`POST /api/reports/handover`): the incoming supervisor, from the
//! session, accepts what the report says, and the acceptance is audited
//! with a digest of the report's figures, so what was accepted can be
//! checked later against the same rows.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::routes::{page, post as post_route, Route, Rule};
use super::{assets, gate, ApiError, WebContext};
use crate::identity::audit::Entry;
use crate::identity::{Permission, Person};
use crate::report::html::{self, Lang, Styles};
use crate::report::{self, ReportError, ReportSettings, ShiftReport};

pub const ROUTES: &[Route] = &[
    page("/reports", Rule::May(Permission::Reports)),
    page("/reports/shift", Rule::May(Permission::Reports)),
    post_route("/api/reports/handover", Rule::May(Permission::Reports)),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(reports_page).service(shift).service(handover);
}

/// A shift's length when `from` is left out.
const DEFAULT_SHIFT: Duration = Duration::hours(8);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftQuery {
    city: String,
    from: Option<String>,
    to: Option<String>,
    lang: Option<String>,
}

/// The shift a request names: `to` (default now) and `from` (default 8 hours before).
fn shift_of(
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = super::admin::time("to", to)?.unwrap_or_else(Utc::now);
    let from = super::admin::time("from", from)?.unwrap_or(to - DEFAULT_SHIFT);
    Ok((from, to))
}

async fn build(
    ctx: &WebContext,
    city: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ShiftReport, ApiError> {
    report::build(
        &ctx.store,
        &ctx.directory,
        &ReportSettings::of(&ctx.settings),
        city,
        from,
        to,
    )
    .await
    .map_err(|e| match e {
        ReportError::BadRange | ReportError::BadCity(_) => ApiError::bad_request(e.to_string()),
        ReportError::Store(_) | ReportError::Audit(_) => ApiError::unavailable(e.to_string()),
    })
}

#[get("/reports")]
async fn reports_page() -> HttpResponse {
    assets::serve("reports.html")
}

#[get("/reports/shift")]
async fn shift(
    ctx: web::Data<WebContext>,
    q: web::Query<ShiftQuery>,
) -> Result<HttpResponse, ApiError> {
    let lang = match q.lang.as_deref() {
        None => Lang::Id,
        Some(l) => Lang::parse(l).ok_or_else(|| ApiError::bad_request("lang is id or en"))?,
    };
    let (from, to) = shift_of(&q.from, &q.to)?;
    let r = build(&ctx, &q.city, from, to).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html::render(&r, lang, Styles::Linked)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoverRequest {
    city: String,
    from: Option<String>,
    to: Option<String>,
    /// What the incoming supervisor adds (optional).
    note: Option<String>,
}

/// The digest of a report's figures (its time of making left out): two
/// reports of the same shift over the same rows have the same digest.
pub fn digest(r: &ShiftReport) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("generated_at");
    }
    let h = Sha256::digest(v.to_string().as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[post("/api/reports/handover")]
async fn handover(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    body: web::Json<HandoverRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.note.as_ref().is_some_and(|n| n.len() > 1000) {
        return Err(ApiError::bad_request("note is at most 1000 bytes"));
    }
    let (from, to) = shift_of(&body.from, &body.to)?;
    let r = build(&ctx, &body.city, from, to).await?;
    let digest = digest(&r);
    let addr = gate::client_addr(&ctx, &req);
    let entry = Entry::new(
        person.name(),
        &person.roles_text(),
        &addr,
        "handover_accepted",
    )
    .entity(format!(
        "shift:{}/{}/{}",
        r.city,
        from.to_rfc3339(),
        to.to_rfc3339()
    ))
    .outcome("accepted")
    .detail(serde_json::json!({
        "digest": digest,
        "open_calls": r.handover.open_calls.len(),
        "live_alerts": r.handover.live_alerts.len(),
        "audit_hash": r.audit.as_ref().map(|a| a.hash.clone()),
        "note": body.note,
    }));
    if !ctx.record(entry).await {
        return Err(ApiError::unavailable(
            "could not record the acceptance in the audit: the handover is not accepted",
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "accepted_by": person.name(),
        "city": r.city,
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "digest": digest,
        "open_calls": r.handover.open_calls.len(),
        "live_alerts": r.handover.live_alerts.len(),
    })))
}
