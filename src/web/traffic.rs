//! The traffic area: operator commands to traffic controllers. Kendali
//! publishes a command on the bus; the console shows it done when the
//! controller's acknowledgement comes back through ingest. Who issued it
//! comes from the session; the command is refused outside the officer's
//! cities and districts, throttled per user, and audited.

use super::routes::{post, Route, Rule};
use crate::identity::Permission;
use std::time::Duration;

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{gate, ApiError, WebContext};
use crate::bus::Qos;
use crate::contract::validate::validate_outgoing;
use crate::contract::{Command, CommandAction, ControllerMode, Message, Topic};
use crate::hub::Known;
use crate::identity::audit::Entry;
use crate::identity::Person;
use crate::state::UpdateKind;

/// An operator command as the consoles send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    action: CommandAction,
    approach: Option<String>,
    seconds: Option<f64>,
    plan: Option<String>,
    mode: Option<ControllerMode>,
    /// Refused when present: who acted comes from the session.
    issued_by: Option<serde_json::Value>,
}

/// How long publishing a command may wait for room in the bus client's
/// request queue (full only while the broker is unreachable).
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

#[post("/api/atcs/{city}/{intersection}/command")]
async fn command(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<(String, String)>,
    body: web::Json<CommandRequest>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let body = body.into_inner();
    if body.issued_by.is_some() {
        return Err(ApiError::bad_request(
            "issued_by is not accepted: who issued a command is taken from your session; remove the field",
        ));
    }
    let topic = Topic::parse(&format!("city/{city}/atcs/{intersection}/command"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cmd = Command {
        command_id: Uuid::new_v4(),
        ts: Utc::now().with_timezone(&crate::domain::wib()),
        action: body.action,
        approach: body.approach,
        seconds: body.seconds,
        plan: body.plan,
        mode: body.mode,
        issued_by: person.name().to_owned(),
    };
    let msg = Message::Command(Box::new(cmd.clone()));
    let bytes = validate_outgoing(&topic, &msg, &ctx.limits)
        .map_err(|r| ApiError::bad_request(r.to_string()))?;
    // A command for a junction no controller has spoken for would be
    // published to nobody, and shown pending for ever.
    let key = format!("{city}/{intersection}");
    let district = match ctx
        .hub
        .lookup(UpdateKind::Intersection, &city, &key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    {
        Known::Entity { district } => district,
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
    };
    let entity = format!("atcs:{key}");
    let addr = gate::client_addr(&ctx, &req);
    let audit = |outcome: &str| {
        Entry::new(person.name(), &person.roles_text(), &addr, "traffic_command")
            .entity(entity.clone())
            .outcome(outcome)
            .detail(serde_json::json!({ "command_id": cmd.command_id, "action": cmd.action, "approach": cmd.approach, "seconds": cmd.seconds, "plan": cmd.plan, "mode": cmd.mode }))
    };
    if !person.in_scope(&city, district.as_deref()) {
        ctx.record(audit("refused_scope")).await;
        return Err(ApiError::forbidden(format!(
            "intersection {intersection:?} ({}) is outside your cities and districts",
            district.as_deref().unwrap_or("no district")
        )));
    }
    if let Err(wait) = ctx.actions.take(person.name()) {
        ctx.record(audit("throttled")).await;
        return Err(ApiError::too_many(
            "too many actions in a short time: wait, then try again",
            wait,
        ));
    }
    // Published only while the bus is up: a command queued during an outage
    // would reach the controller minutes later, after the operator has
    // acted otherwise.
    if !ctx.ingest.main_connected() {
        ctx.record(audit("broker_unreachable")).await;
        return Err(ApiError::unavailable(
            "could not publish the command: the broker is unreachable",
        ));
    }
    // Recorded before it leaves: an action the audit cannot hold does not happen.
    if !ctx.record(audit("published")).await {
        return Err(ApiError::unavailable(
            "could not record the command in the audit: it was not sent",
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
            ctx.record(audit("publish_failed")).await;
            return Err(ApiError::unavailable(format!(
                "could not publish the command: {e}"
            )));
        }
        Err(_) => {
            ctx.record(audit("publish_failed")).await;
            return Err(ApiError::unavailable(
                "could not publish the command: the bus client is not taking requests",
            ));
        }
    }
    tracing::info!(%topic, command_id = %cmd.command_id, issued_by = %cmd.issued_by, "operator command published");
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "topic": topic.to_string(), "command": cmd })))
}

/// Traffic officers (in their scope, checked in the handler) and supervisors.
pub const ROUTES: &[Route] = &[post(
    "/api/atcs/{city}/{intersection}/command",
    Rule::May(Permission::Traffic),
)];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(command);
}
