//! `GET /ws`: checks the `Origin` against the allowlist, parses the
//! subscription from the query string, registers the client with the hub,
//! hands the reading side to its own session task and answers with a body
//! that streams the client's queue (`hub::session::FrameBody`).

use actix_web::body::{BodyStream, MessageBody};
use actix_web::{get, web, HttpRequest, HttpResponse};

use super::{ApiError, WebContext};
use crate::hub::{session, Connected, Filter};

fn origin_allowed(ctx: &WebContext, req: &HttpRequest) -> bool {
    match req.headers().get("origin").and_then(|o| o.to_str().ok()) {
        // Non-browser clients (tools, tests) send no Origin; browsers always do.
        None => true,
        Some(o) => {
            let host_origin = req.connection_info().host().to_owned();
            ctx.own_origins.iter().any(|a| a == o)
                || ctx
                    .settings
                    .http
                    .allowed_origins
                    .iter()
                    .any(|a| a == o || a == "*")
                || o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
                    == Some(host_origin.as_str())
        }
    }
}

#[get("/ws")]
async fn ws(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&ctx, &req) {
        return Ok(HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "origin not allowed", "status": 403 })));
    }
    let (filter, resume) =
        Filter::from_query(req.query_string()).map_err(|e| ApiError::bad_request(e.0))?;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let Connected {
        id,
        frames,
        kill,
        queued_bytes,
    } = ctx
        .hub
        .connect(filter, resume.since, resume.epoch)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watch = session::QueueWatch {
        queued_bytes: queued_bytes.clone(),
        taken: taken.clone(),
    };
    actix_web::rt::spawn(session::run(
        ctx.hub.clone(),
        session,
        stream,
        id,
        kill,
        watch,
    ));
    Ok(response.map_body(|_, control| {
        BodyStream::new(session::FrameBody::new(
            control,
            frames,
            queued_bytes,
            taken,
        ))
        .boxed()
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(ws);
}
