//! Operations endpoints: `/healthz` (the process answers), `/readyz` (every
//! connection to the broker is up and has its subscriptions acknowledged), `/metrics`
//! (Prometheus text).

use super::routes::{get, Route, Rule};
use std::sync::atomic::Ordering;

use actix_web::{get, web, HttpResponse, Responder};

use super::WebContext;

#[get("/healthz")]
async fn healthz() -> impl Responder {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[get("/readyz")]
async fn readyz(ctx: web::Data<WebContext>) -> impl Responder {
    let broker = ctx.ingest.connected();
    let ready = ctx.ingest.ready();
    let body = serde_json::json!({
        "ready": ready,
        "broker": if broker { "connected" } else { "disconnected" },
        "subscribed": ctx.ingest.subscribed(),
        "broker_error": ctx.ingest.last_error(),
        "store": ctx.store.describe(),
        "store_degraded": ctx.store.status.degraded.load(Ordering::Relaxed),
        "store_lag_ms": ctx.store.status.lag_ms.load(Ordering::Relaxed),
        // TimescaleDB's background jobs whose last run failed: the database
        // still takes writes, so readiness stands, but someone must look.
        "timescaledb_failed_jobs": ctx.store.status.failed_jobs.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[get("/metrics")]
async fn metrics(ctx: web::Data<WebContext>) -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(ctx.metrics.render())
}

/// Health is public; metrics are for loopback or the metrics token.
pub const ROUTES: &[Route] = &[
    get("/healthz", Rule::Public),
    get("/readyz", Rule::Public),
    get("/metrics", Rule::Metrics),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}
