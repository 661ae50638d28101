//! `GET /ws`: checks the `Origin` against the allowlist, parses the
//! subscription from the query string, registers the client with the hub
//! (with or without callers' personal data, by the person's role), hands the
//! reading side to its own session task and answers with a body that
//! streams the client's queue ([`session::FrameBody`]). Who the client is was
//! settled by the gate at the upgrade; the session task only checks, every
//! `auth.session_recheck_s`, that the session has not ended since.

use std::time::Duration;

use actix_web::body::{BodyStream, MessageBody};
use actix_web::{get, web, HttpRequest, HttpResponse};

use super::session;
use crate::hub::{Connected, Filter};
use crate::identity::{Permission, Person};
use crate::web::{gate, ApiError, WebContext, SESSION_COOKIE};

#[get("/ws")]
async fn ws(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // Browsers always send an Origin on a websocket; tools and tests send none.
    if let Some(origin) = req.headers().get("origin") {
        if !gate::origin_allowed(&ctx, &req, origin) {
            return Ok(HttpResponse::Forbidden()
                .json(serde_json::json!({ "error": "origin not allowed", "status": 403 })));
        }
    }
    let (mut filter, resume) =
        Filter::from_query(req.query_string()).map_err(|e| ApiError::bad_request(e.0))?;
    let personal = person.may(Permission::PersonalData);
    filter.personal = personal;
    let (response, ws_session, stream) = actix_ws::handle(&req, body)?;
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
    let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let session_end: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> =
        match (token, person.session.is_some()) {
            (Some(token), true) => {
                let directory = ctx.directory.clone();
                let timeouts = ctx.timeouts;
                let every = Duration::from_secs(ctx.settings.auth.session_recheck_s);
                Box::pin(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        // A database that does not answer ends no session.
                        if let Ok(None) = directory.resolve(&token, &timeouts, false).await {
                            return;
                        }
                    }
                })
            }
            _ => Box::pin(std::future::pending()),
        };
    actix_web::rt::spawn(session::run(
        ctx.hub.clone(),
        ws_session,
        stream,
        id,
        kill,
        watch,
        session::Access {
            personal,
            session_end,
        },
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
