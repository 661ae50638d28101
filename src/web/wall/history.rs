//! `GET /api/history/...`: time-bucketed history from the store, answered
//! from the per-minute rollup where it covers the range. Parameters `from`,
//! `to` (RFC 3339; default the last hour) and `bucket` (`30s`, `5m`, `1h`...).

use actix_web::{get, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use crate::contract::{CallCategory, CallLine};
use crate::store::history::{AtcsMetric, HistoryQuery, RangeParams};
use crate::web::{ApiError, WebContext};

fn range(p: &RangeParams) -> Result<crate::store::history::Range, ApiError> {
    p.resolve(Utc::now())
        .map_err(|e| ApiError::bad_request(e.0))
}

async fn answer(ctx: &WebContext, q: HistoryQuery) -> Result<HttpResponse, ApiError> {
    q.check().map_err(|e| ApiError::bad_request(e.0))?;
    let a = ctx.store.query(&q).await.map_err(|e| {
        tracing::warn!(error = %e, "history query failed");
        ApiError::unavailable(e.to_string())
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "store": ctx.store.describe(), "points": a })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtcsParams {
    metric: Option<AtcsMetric>,
    approach: Option<String>,
    #[serde(flatten)]
    range: RangeParams,
}

#[get("/api/history/atcs/{city}/{intersection}")]
async fn atcs(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String)>,
    q: web::Query<AtcsParams>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let q = q.into_inner();
    let range = range(&q.range)?;
    answer(
        &ctx,
        HistoryQuery::Atcs {
            city,
            intersection,
            approach: q.approach,
            metric: q.metric.unwrap_or(AtcsMetric::Saturation),
            range,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    line: Option<String>,
    category: Option<CallCategory>,
    #[serde(flatten)]
    range: RangeParams,
}

#[get("/api/history/calls/{city}")]
async fn calls(
    ctx: web::Data<WebContext>,
    path: web::Path<String>,
    q: web::Query<CallParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let line = match &q.line {
        None => None,
        Some(l) => Some(
            CallLine::parse(l)
                .ok_or_else(|| ApiError::bad_request(format!("line {l:?} must be 112 or 119")))?,
        ),
    };
    let range = range(&q.range)?;
    answer(
        &ctx,
        HistoryQuery::Calls {
            city: path.into_inner(),
            line,
            category: q.category,
            range,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitParams {
    unit: Option<String>,
    #[serde(flatten)]
    range: RangeParams,
}

#[get("/api/history/units/{city}")]
async fn units(
    ctx: web::Data<WebContext>,
    path: web::Path<String>,
    q: web::Query<UnitParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let range = range(&q.range)?;
    answer(
        &ctx,
        HistoryQuery::Units {
            city: path.into_inner(),
            unit: q.unit,
            range,
        },
    )
    .await
}

/// The commands sent to one junction (default: the last 24 hours), newest
/// first, each with its controller's answer: a traffic console's history
/// beyond the commands the live state keeps.
#[get("/api/history/commands/{city}/{intersection}")]
async fn commands(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String)>,
    q: web::Query<RangeParams>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let mut q = q.into_inner();
    if q.from.is_none() {
        let to =
            q.to.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
        q.from = Some((to - chrono::Duration::hours(24)).to_rfc3339());
    }
    if q.bucket.is_none() {
        // Not bucketed: one bucket per hour keeps the range within bounds.
        q.bucket = Some("1h".into());
    }
    let range = range(&q)?;
    answer(
        &ctx,
        HistoryQuery::Commands {
            city,
            intersection,
            range,
        },
    )
    .await
}

#[get("/api/history/kpi/{city}/{service}/{metric}")]
async fn kpi(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String, String)>,
    q: web::Query<RangeParams>,
) -> Result<HttpResponse, ApiError> {
    let (city, service, metric) = path.into_inner();
    let range = range(&q)?;
    answer(
        &ctx,
        HistoryQuery::Kpi {
            city,
            service,
            metric,
            range,
        },
    )
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(atcs)
        .service(calls)
        .service(units)
        .service(kpi)
        .service(commands);
}
