//! `GET /api/charts/...svg`: history charts drawn on the server with plotters
//! (one endpoint per chart, with the history API's range parameters), for
//! the wall's tiles and, later, reports. No chart library in the browser.

use actix_web::{get, http::header, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use crate::charts::{line_chart, ChartError, ChartSpec, Series, Target};
use crate::contract::CallLine;
use crate::store::history::{AtcsMetric, HistoryAnswer, HistoryQuery, RangeParams};
use crate::web::{ApiError, WebContext};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartParams {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    /// A reference line (e.g. the KPI's target).
    target: Option<f64>,
    /// For ATCS charts.
    metric: Option<AtcsMetric>,
    approach: Option<String>,
    /// For call charts.
    line: Option<String>,
    /// For ATCS charts: `week` adds the same window a week earlier.
    compare: Option<String>,
}

impl ChartParams {
    fn range(&self) -> Result<crate::store::history::Range, ApiError> {
        RangeParams {
            from: self.from.clone(),
            to: self.to.clone(),
            bucket: self.bucket.clone(),
        }
        .resolve(Utc::now())
        .map_err(|e| ApiError::bad_request(e.0))
    }

    fn spec(&self, title: String, y_label: &str) -> Result<ChartSpec, ApiError> {
        let (w, h) = (self.width.unwrap_or(640), self.height.unwrap_or(240));
        if !(160..=3840).contains(&w) || !(100..=2160).contains(&h) {
            return Err(ApiError::bad_request(
                "width must be 160..=3840 and height 100..=2160",
            ));
        }
        let mut spec = ChartSpec::new(title, y_label, w, h);
        spec.target = self.target.map(|value| Target {
            value,
            label: "target".into(),
        });
        Ok(spec)
    }
}

fn svg(spec: &ChartSpec, series: &[Series]) -> Result<HttpResponse, ApiError> {
    let body = match line_chart(spec, series) {
        Ok(svg) => svg,
        // An empty range is not an error on a wall: draw the frame and say so.
        Err(ChartError::Empty) => format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><rect width="100%" height="100%" fill="#0b1220"/><text x="50%" y="50%" fill="#8a9bb5" font-family="system-ui, sans-serif" font-size="16" text-anchor="middle">{t}: tidak ada data / no data</text></svg>"##,
            w = spec.width,
            h = spec.height,
            t = spec.title.replace('&', "&amp;").replace('<', "&lt;")
        ),
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    };
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

async fn series(ctx: &WebContext, q: HistoryQuery) -> Result<HistoryAnswer, ApiError> {
    q.check().map_err(|e| ApiError::bad_request(e.0))?;
    ctx.store.query(&q).await.map_err(|e| {
        tracing::warn!(error = %e, "chart query failed");
        ApiError::unavailable(e.to_string())
    })
}

#[get("/api/charts/kpi/{city}/{service}/{metric}.svg")]
async fn kpi(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String, String)>,
    p: web::Query<ChartParams>,
) -> Result<HttpResponse, ApiError> {
    let (city, service, metric) = path.into_inner();
    let range = p.range()?;
    let spec = p
        .spec(format!("{service} · {metric}"), &metric)?
        .in_zone(ctx.settings.cities.zones().of(&city));
    let HistoryAnswer::Series(points) = series(
        &ctx,
        HistoryQuery::Kpi {
            city,
            service,
            metric: metric.clone(),
            range,
        },
    )
    .await?
    else {
        return Err(ApiError::bad_request("unexpected answer"));
    };
    svg(
        &spec,
        &[Series {
            name: metric,
            points: points.iter().map(|p| (p.t, p.avg)).collect(),
            color: None,
        }],
    )
}

#[get("/api/charts/atcs/{city}/{intersection}.svg")]
async fn atcs(
    ctx: web::Data<WebContext>,
    path: web::Path<(String, String)>,
    p: web::Query<ChartParams>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let range = p.range()?;
    let metric = p.metric.unwrap_or(AtcsMetric::Saturation);
    let spec = p
        .spec(
            format!("{intersection} · {}", metric.column()),
            metric.column(),
        )?
        .in_zone(ctx.settings.cities.zones().of(&city));
    let week = match p.compare.as_deref() {
        None => None,
        Some("week") => Some(chrono::Duration::days(7)),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "compare {other:?}: the only comparison is `week` (the same window a week earlier)"
            )))
        }
    };
    let query = |range: crate::store::history::Range| HistoryQuery::Atcs {
        city: city.clone(),
        intersection: intersection.clone(),
        approach: p.approach.clone(),
        metric,
        range,
    };
    let HistoryAnswer::Series(points) = series(&ctx, query(range)).await? else {
        return Err(ApiError::bad_request("unexpected answer"));
    };
    let mut lines = vec![
        Series {
            name: "rata-rata / avg".into(),
            points: points.iter().map(|p| (p.t, p.avg)).collect(),
            color: None,
        },
        Series {
            name: "maks / max".into(),
            points: points.iter().map(|p| (p.t, p.max)).collect(),
            color: None,
        },
    ];
    if let Some(shift) = week {
        let earlier = crate::store::history::Range {
            from: range.from - shift,
            to: range.to - shift,
            bucket: range.bucket,
        };
        let HistoryAnswer::Series(before) = series(&ctx, query(earlier)).await? else {
            return Err(ApiError::bad_request("unexpected answer"));
        };
        // Drawn on this window's time axis.
        lines.push(Series {
            name: "minggu lalu / last week".into(),
            points: before.iter().map(|p| (p.t + shift, p.avg)).collect(),
            color: None,
        });
    }
    svg(&spec, &lines)
}

#[get("/api/charts/calls/{city}.svg")]
async fn calls(
    ctx: web::Data<WebContext>,
    path: web::Path<String>,
    p: web::Query<ChartParams>,
) -> Result<HttpResponse, ApiError> {
    let city = path.into_inner();
    let range = p.range()?;
    let line = match &p.line {
        None => None,
        Some(l) => Some(
            CallLine::parse(l)
                .ok_or_else(|| ApiError::bad_request(format!("line {l:?} must be 112 or 119")))?,
        ),
    };
    let spec = p
        .spec(
            format!(
                "Panggilan {} · calls",
                line.map(|l| l.as_str()).unwrap_or("112 + 119")
            ),
            "panggilan / calls",
        )?
        .in_zone(ctx.settings.cities.zones().of(&city));
    let HistoryAnswer::Calls(buckets) = series(
        &ctx,
        HistoryQuery::Calls {
            city,
            line,
            category: None,
            range,
        },
    )
    .await?
    else {
        return Err(ApiError::bad_request("unexpected answer"));
    };
    let pick = |f: fn(&crate::store::history::CallBucket) -> u64| {
        buckets
            .iter()
            .filter_map(|b| Some((b.t?, f(b) as f64)))
            .collect()
    };
    svg(
        &spec,
        &[
            Series {
                name: "masuk / received".into(),
                points: pick(|b| b.received),
                color: None,
            },
            Series {
                name: "dijawab ≤ 15 dtk / answered ≤ 15 s".into(),
                points: pick(|b| b.answered_within_15s),
                color: None,
            },
        ],
    )
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(kpi).service(atcs).service(calls);
}
