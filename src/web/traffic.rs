//! The traffic area: the officers' console (`/traffic`) and its actions.
//! A command is published on the bus and shown done when the controller's
//! acknowledgement comes back through ingest (pending, then applied,
//! rejected or timed out: the live state decides). Who issued it comes from
//! the session; every command names a reason; a `set_plan` or `set_mode` is
//! a lease that Kendali reverts when it ends; flashing and off need the
//! junction's id typed as confirmation; commands are limited per junction
//! (all officers together) and per officer; every command, published or
//! refused, is audited.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::routes::{get as get_route, page, post as post_route, Route, Rule};
use super::{assets, gate, ApiError, WebContext};
use crate::contract::{
    Command, CommandAction, ControllerMode, IntersectionInfo, IntersectionState,
};
use crate::domain::traffic::{announcement, ANNOUNCEMENTS};
use crate::identity::audit::Entry;
use crate::identity::{Permission, Person};
use crate::state::UpdateKind;
use crate::traffic::PublishError;

/// An operator command as the consoles send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    action: CommandAction,
    approach: Option<String>,
    seconds: Option<f64>,
    plan: Option<String>,
    mode: Option<ControllerMode>,
    /// For `announce`: the template's id.
    template: Option<String>,
    /// Why: required.
    reason: Option<String>,
    /// For `set_plan` and `set_mode`: the lease, seconds (`traffic.lease_default_s` if left out).
    expires_in_s: Option<f64>,
    /// For `set_mode` to `flashing` or `off`: the junction's id, typed.
    confirm: Option<String>,
    /// For `priority`: the emergency unit the green is held for.
    unit: Option<String>,
    /// Refused when present: who acted comes from the session.
    issued_by: Option<serde_json::Value>,
}

/// What the live state holds of a junction, as far as a command needs it.
#[derive(Deserialize)]
struct Junction {
    info: Option<IntersectionInfo>,
    state: Option<IntersectionState>,
}

impl Junction {
    fn name(&self, id: &str) -> String {
        self.info
            .as_ref()
            .map_or_else(|| id.to_owned(), |i| i.name.clone())
    }

    /// Its approaches' ids, from its info, else from its latest state.
    fn approaches(&self) -> Vec<String> {
        match (&self.info, &self.state) {
            (Some(i), _) if !i.approaches.is_empty() => {
                i.approaches.iter().map(|a| a.id.clone()).collect()
            }
            (_, Some(s)) => s.approaches.iter().map(|a| a.id.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

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
    let addr = gate::client_addr(&ctx, &req);
    let command_id = Uuid::new_v4();
    let audit = |outcome: &str, why: Option<&str>| {
        Entry::new(person.name(), &person.roles_text(), &addr, "traffic_command")
            .entity(format!("atcs:{city}/{intersection}"))
            .outcome(outcome)
            .detail(serde_json::json!({
                "command_id": command_id, "action": body.action, "approach": body.approach,
                "seconds": body.seconds, "plan": body.plan, "mode": body.mode, "template": body.template,
                "reason": body.reason, "expires_in_s": body.expires_in_s, "refused": why,
            }))
    };
    // Every refusal is audited with its message.
    let refuse = |e: ApiError, outcome: &str| {
        let entry = audit(outcome, Some(&e.message));
        let ctx = ctx.clone();
        async move {
            ctx.record(entry).await;
            Err(e)
        }
    };
    if body.issued_by.is_some() {
        return refuse(
            ApiError::bad_request("issued_by is not accepted: who issued a command is taken from your session; remove the field"),
            "refused_bad_request",
        )
        .await;
    }
    if let Err(e) =
        crate::contract::Topic::parse(&format!("city/{city}/atcs/{intersection}/command"))
    {
        return refuse(ApiError::bad_request(e.to_string()), "refused_bad_request").await;
    }
    let key = format!("{city}/{intersection}");
    let found = ctx
        .hub
        .get(UpdateKind::Intersection, &key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    // A command for a junction no controller has spoken for would be
    // published to nobody, and shown pending until it timed out.
    let Some(found) = found else {
        return refuse(
            ApiError::not_found(format!(
                "no intersection {intersection:?} in city {city:?}: no info or state has come from it"
            )),
            "refused_unknown",
        )
        .await;
    };
    let district = found.tags.district.clone();
    if !person.in_scope(&city, district.as_deref()) {
        return refuse(
            ApiError::forbidden(format!(
                "intersection {intersection:?} ({}) is outside your cities and districts",
                district.as_deref().unwrap_or("no district")
            )),
            "refused_scope",
        )
        .await;
    }
    let junction: Junction = serde_json::from_str(found.value_json_for(false)).map_err(|e| {
        ApiError::unavailable(format!("the live state of {key} could not be read: {e}"))
    })?;
    let cmd = match build(
        &ctx.traffic.settings,
        &intersection,
        &junction,
        body_ref(&body),
        command_id,
        person.name(),
    ) {
        Ok(c) => c,
        Err(message) => return refuse(ApiError::bad_request(message), "refused_bad_request").await,
    };
    if let Err(wait) = ctx.traffic.take(&key) {
        return refuse(
            ApiError::too_many(
                format!(
                    "{intersection} has had {} commands in the last minute: wait, then try again",
                    ctx.traffic.settings.commands_per_intersection_per_min
                ),
                wait,
            ),
            "throttled_intersection",
        )
        .await;
    }
    if let Err(wait) = ctx.actions.take(person.name()) {
        return refuse(
            ApiError::too_many(
                "too many actions in a short time: wait, then try again",
                wait,
            ),
            "throttled",
        )
        .await;
    }
    match ctx
        .outbox
        .publish(&city, &intersection, &cmd, audit("published", None))
        .await
    {
        Ok(topic) => {
            tracing::info!(%topic, command_id = %cmd.command_id, issued_by = %cmd.issued_by, "operator command published");
            Ok(HttpResponse::Accepted()
                .json(serde_json::json!({ "topic": topic.to_string(), "command": cmd })))
        }
        Err(PublishError::Invalid(m)) => {
            refuse(ApiError::bad_request(m), "refused_bad_request").await
        }
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

/// The request's fields, borrowed for [`build`].
struct Asked<'a> {
    action: CommandAction,
    approach: Option<&'a str>,
    seconds: Option<f64>,
    plan: Option<&'a str>,
    mode: Option<ControllerMode>,
    template: Option<&'a str>,
    reason: Option<&'a str>,
    expires_in_s: Option<f64>,
    confirm: Option<&'a str>,
    unit: Option<&'a str>,
}

fn body_ref(b: &CommandRequest) -> Asked<'_> {
    Asked {
        action: b.action,
        approach: b.approach.as_deref(),
        seconds: b.seconds,
        plan: b.plan.as_deref(),
        mode: b.mode,
        template: b.template.as_deref(),
        reason: b.reason.as_deref(),
        expires_in_s: b.expires_in_s,
        confirm: b.confirm.as_deref(),
        unit: b.unit.as_deref(),
    }
}

/// The command an officer asked for, or what is wrong with the request.
fn build(
    rules: &crate::domain::traffic::TrafficSettings,
    intersection: &str,
    j: &Junction,
    a: Asked<'_>,
    command_id: Uuid,
    issued_by: &str,
) -> Result<Command, String> {
    let reason = a.reason.map(str::trim).filter(|r| !r.is_empty()).ok_or(
        "reason is required: say why (it is kept with the command and shown on the board)",
    )?;
    let mut cmd = Command::new(
        command_id,
        Utc::now().with_timezone(&crate::domain::wib()),
        a.action,
        issued_by.to_owned(),
    );
    cmd.reason = Some(reason.to_owned());
    let approaches = j.approaches();
    let known_approach = |id: &str| -> Result<String, String> {
        if approaches.iter().any(|a| a == id) {
            Ok(id.to_owned())
        } else {
            Err(format!(
                "unknown approach {id:?} at {intersection} (approaches: {})",
                approaches.join(", ")
            ))
        }
    };
    let lease = |e: Option<f64>| -> Result<f64, String> {
        let e = e.unwrap_or(rules.lease_default_s as f64);
        if e.is_finite() && (10.0..=rules.lease_max_s as f64).contains(&e) {
            Ok(e.round())
        } else {
            Err(format!(
                "expires_in_s = {e} is outside 10..={} (traffic.lease_max_s)",
                rules.lease_max_s
            ))
        }
    };
    match a.action {
        CommandAction::ExtendGreen => {
            let approach = a.approach.ok_or("extend_green needs `approach`")?;
            cmd.approach = Some(known_approach(approach)?);
            let s = a.seconds.ok_or("extend_green needs `seconds`")?;
            if !(s.is_finite() && (1.0..=f64::from(rules.extend_max_s)).contains(&s)) {
                return Err(format!(
                    "seconds = {s} is outside 1..={} (traffic.extend_max_s)",
                    rules.extend_max_s
                ));
            }
            cmd.seconds = Some(s.round());
            if a.expires_in_s.is_some() {
                return Err("extend_green takes no expires_in_s: it ends with its seconds".into());
            }
        }
        CommandAction::SetPlan => {
            cmd.plan = Some(a.plan.ok_or("set_plan needs `plan`")?.to_owned());
            cmd.expires_in_s = Some(lease(a.expires_in_s)?);
        }
        CommandAction::SetMode => {
            let mode = a.mode.ok_or("set_mode needs `mode`")?;
            if matches!(mode, ControllerMode::Flashing | ControllerMode::Off)
                && a.confirm != Some(intersection)
            {
                return Err(format!(
                    "set_mode {} stops the signals at {intersection}: type the junction's id ({intersection}) in `confirm` to go ahead",
                    mode.as_str()
                ));
            }
            cmd.mode = Some(mode);
            cmd.expires_in_s = Some(lease(a.expires_in_s)?);
        }
        CommandAction::Announce => {
            let t = a
                .template
                .ok_or("announce needs `template` (see GET /api/traffic/{city}/desk)")?;
            cmd.message = Some(announcement(t, &j.name(intersection)).ok_or_else(|| {
                let ids: Vec<&str> = ANNOUNCEMENTS.iter().map(|a| a.id).collect();
                format!("unknown template {t:?} (templates: {})", ids.join(", "))
            })?);
            cmd.template = Some(t.to_owned());
            if let Some(approach) = a.approach {
                cmd.approach = Some(known_approach(approach)?);
            }
        }
        CommandAction::Priority => {
            let approach = a
                .approach
                .ok_or("priority needs `approach` (the one the vehicle comes on)")?;
            cmd.approach = Some(known_approach(approach)?);
            cmd.expires_in_s = Some(lease(a.expires_in_s)?);
            cmd.unit = a.unit.map(str::to_owned);
        }
    }
    Ok(cmd)
}

/// A green corridor for a dispatched unit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorridorRequest {
    unit: String,
    reason: Option<String>,
    /// How long each junction holds its green at most (`traffic.corridor_s` if left out).
    expires_in_s: Option<f64>,
}

/// `POST /api/traffic/{city}/corridor`: a time-limited green wave along a
/// dispatched unit's route (see [`crate::traffic::corridor`]), on the
/// junctions of the officer's districts.
#[post("/api/traffic/{city}/corridor")]
async fn corridor(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
    body: web::Json<CorridorRequest>,
) -> Result<HttpResponse, ApiError> {
    use crate::traffic::corridor::{give, CorridorError, Issuer};
    let city = path.into_inner();
    let body = body.into_inner();
    let addr = gate::client_addr(&ctx, &req);
    let audit = |outcome: &str, detail: serde_json::Value| {
        Entry::new(
            person.name(),
            &person.roles_text(),
            &addr,
            "traffic_corridor",
        )
        .entity(format!("unit:{city}/{}", body.unit))
        .outcome(outcome)
        .detail(detail)
    };
    let refuse = |e: ApiError| {
        let entry = audit(
            "refused",
            serde_json::json!({ "refused": e.message, "reason": body.reason }),
        );
        let ctx = ctx.clone();
        async move {
            ctx.record(entry).await;
            Err(e)
        }
    };
    let Some(reason) = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    else {
        return refuse(ApiError::bad_request(
            "reason is required: say why (e.g. the call it serves)",
        ))
        .await;
    };
    let rules = &ctx.traffic.settings;
    let lease = body.expires_in_s.unwrap_or(rules.corridor_s as f64);
    if !(lease.is_finite() && (10.0..=rules.lease_max_s as f64).contains(&lease)) {
        return refuse(ApiError::bad_request(format!(
            "expires_in_s = {lease} is outside 10..={}",
            rules.lease_max_s
        )))
        .await;
    }
    let issuer = Issuer {
        name: person.name(),
        roles: person.roles_text(),
        addr: &addr,
        person: Some(&person),
    };
    let given = match give(
        &ctx.hub,
        &ctx.traffic,
        &ctx.outbox,
        &ctx.road_net,
        &city,
        &body.unit,
        &issuer,
        reason,
        lease,
    )
    .await
    {
        Ok(g) => g,
        Err(e @ CorridorError::NoUnit(..)) => {
            return refuse(ApiError::not_found(e.to_string())).await
        }
        Err(e @ (CorridorError::NoPosition(_) | CorridorError::NoDestination(_))) => {
            return refuse(ApiError::conflict(e.to_string())).await
        }
        Err(e) => return Err(ApiError::unavailable(e.to_string())),
    };
    ctx.record(audit("published", serde_json::json!({ "reason": reason, "call_id": given.call_id, "commands": given.commands, "skipped": given.skipped }))).await;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "unit": body.unit, "call_id": given.call_id, "expires_in_s": lease.round(), "commands": given.commands, "skipped": given.skipped })))
}

/// Automatic mode on or off for one junction.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoRequest {
    enabled: bool,
    reason: Option<String>,
}

#[post("/api/atcs/{city}/{intersection}/auto")]
async fn auto_mode(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<(String, String)>,
    body: web::Json<AutoRequest>,
) -> Result<HttpResponse, ApiError> {
    let (city, intersection) = path.into_inner();
    let key = format!("{city}/{intersection}");
    let addr = gate::client_addr(&ctx, &req);
    let audit = |outcome: &str| {
        Entry::new(person.name(), &person.roles_text(), &addr, "traffic_auto")
            .entity(format!("atcs:{key}"))
            .outcome(outcome)
            .detail(serde_json::json!({ "enabled": body.enabled, "reason": body.reason }))
    };
    let district = match ctx
        .hub
        .get(UpdateKind::Intersection, &key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    {
        Some(u) => u.tags.district.clone(),
        None => {
            ctx.record(audit("refused_unknown")).await;
            return Err(ApiError::not_found(format!(
                "no intersection {intersection:?} in city {city:?}"
            )));
        }
    };
    if !person.in_scope(&city, district.as_deref()) {
        ctx.record(audit("refused_scope")).await;
        return Err(ApiError::forbidden(format!(
            "intersection {intersection:?} is outside your cities and districts"
        )));
    }
    if body.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        ctx.record(audit("refused_bad_request")).await;
        return Err(ApiError::bad_request(
            "reason is required: say why automatic mode changes",
        ));
    }
    if !ctx
        .record(audit(if body.enabled { "enabled" } else { "disabled" }))
        .await
    {
        return Err(ApiError::unavailable(
            "could not record the change in the audit: nothing changed",
        ));
    }
    ctx.traffic.set_auto(&key, body.enabled, person.name());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "auto": ctx.traffic.auto_in(&city) })))
}

/// What the console needs besides the live state: the announcement
/// templates, the limits it holds commands to, the junctions in automatic mode.
#[get("/api/traffic/{city}/desk")]
async fn desk(ctx: web::Data<WebContext>, path: web::Path<String>) -> HttpResponse {
    let city = path.into_inner();
    let t = &ctx.traffic.settings;
    HttpResponse::Ok().json(serde_json::json!({
        "announcements": ANNOUNCEMENTS.iter().map(|a| serde_json::json!({ "id": a.id, "id_text": a.id_text, "en_text": a.en_text })).collect::<Vec<_>>(),
        "limits": {
            "ack_timeout_s": t.ack_timeout_s,
            "extend_max_s": t.extend_max_s,
            "lease_default_s": t.lease_default_s,
            "lease_max_s": t.lease_max_s,
            "commands_per_intersection_per_min": t.commands_per_intersection_per_min,
            "congestion_saturation": t.congestion_saturation,
            "congestion_cycles": t.congestion_cycles,
            "auto_max_s_per_hour": t.auto_max_s_per_hour,
            "auto_min_gap_s": t.auto_min_gap_s,
            "corridor_s": t.corridor_s,
            "corridor_priority": t.corridor_priority,
        },
        "auto": ctx.traffic.auto_in(&city),
    }))
}

#[get("/traffic")]
async fn traffic_page() -> HttpResponse {
    assets::serve("traffic.html")
}

/// Traffic officers (in their scope, checked in the handlers) and supervisors.
pub const ROUTES: &[Route] = &[
    page("/traffic", Rule::May(Permission::Traffic)),
    post_route(
        "/api/atcs/{city}/{intersection}/command",
        Rule::May(Permission::Traffic),
    ),
    post_route(
        "/api/atcs/{city}/{intersection}/auto",
        Rule::May(Permission::Traffic),
    ),
    get_route("/api/traffic/{city}/desk", Rule::May(Permission::Traffic)),
    post_route(
        "/api/traffic/{city}/corridor",
        Rule::May(Permission::Traffic),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(command)
        .service(auto_mode)
        .service(desk)
        .service(corridor)
        .service(traffic_page);
}
