//! Signing in and out: the login page, `POST /api/login`, `POST
//! /api/logout`, and `GET /api/me` (who the screens are showing the room
//! to). A wrong user and a wrong password get the same answer after the same
//! work; repeated failures from one address or for one user are delayed
//! (`429`) and every attempt is audited. Passwords never reach a log.

use super::routes::{get, page, post, Route, Rule};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{assets, gate, ApiError, WebContext};
use crate::identity::audit::Entry;
use crate::identity::directory::Holder;
use crate::identity::{password, Permission, Person, Via};

/// Largest login body accepted.
const MAX_LOGIN_BODY: usize = 16 * 1024;

#[get("/login")]
async fn login_page() -> HttpResponse {
    assets::serve("login.html")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[post("/api/login")]
async fn login(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, MAX_LOGIN_BODY).await?;
    if body.len() > MAX_LOGIN_BODY {
        return Err(ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("a login body has at most {MAX_LOGIN_BODY} bytes"),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send {\"username\": ..., \"password\": ...} as JSON",
        ));
    }
    // The parser's message may quote the body, and so the password: not echoed.
    let LoginRequest { username, password } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the login body is not {{\"username\": text, \"password\": text}} (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let username = username.trim().to_ascii_lowercase();
    let addr = gate::client_addr(&ctx, &req);
    let (addr_key, user_key) = (format!("addr:{addr}"), format!("user:{username}"));
    let entity = format!("user:{}", username.chars().take(64).collect::<String>());
    if let Some(wait) = ctx
        .login_throttle
        .blocked(&addr_key)
        .max(ctx.login_throttle.blocked(&user_key))
    {
        ctx.record(
            Entry::new("anonymous", "", &addr, "login_failed")
                .entity(entity)
                .outcome("throttled"),
        )
        .await;
        return Err(ApiError::too_many(
            "too many failed sign-ins: wait, then try again",
            wait,
        ));
    }
    let user = ctx
        .directory
        .user(&username)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .filter(|u| !u.disabled);
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let ok = web::block(move || password::verify(&password, phc.as_deref()))
        .await
        .map_err(|e| ApiError::unavailable(format!("checking the password: {e}")))?;
    let Some(user) = user.filter(|_| ok) else {
        use crate::identity::throttle::{ADDRESS_FREE_FAILURES, USER_FREE_FAILURES};
        let delay = ctx
            .login_throttle
            .failed(&addr_key, ADDRESS_FREE_FAILURES)
            .max(ctx.login_throttle.failed(&user_key, USER_FREE_FAILURES));
        ctx.record(
            Entry::new("anonymous", "", &addr, "login_failed")
                .entity(entity)
                .outcome("refused")
                .detail(serde_json::json!({ "delay_s": delay.map(|d| d.as_secs()) })),
        )
        .await;
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    ctx.login_throttle.succeeded(&addr_key);
    ctx.login_throttle.succeeded(&user_key);
    let lifetime = ctx.timeouts.absolute;
    let token = ctx
        .directory
        .open_session(Holder::User(user.username.clone()), &addr, lifetime)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let roles = user
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",");
    ctx.record(
        Entry::new(&user.username, &roles, &addr, "login")
            .entity(format!("user:{}", user.username)),
    )
    .await;
    Ok(HttpResponse::Ok()
        .cookie(gate::session_cookie(
            &ctx,
            &req,
            Some(&token),
            lifetime.num_seconds(),
        ))
        .json(serde_json::json!({
            "username": user.username,
            "roles": user.roles,
            "idle_timeout_min": ctx.timeouts.idle.num_minutes(),
        })))
}

#[post("/api/logout")]
async fn logout(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
) -> Result<HttpResponse, ApiError> {
    if let Some(key) = &person.session {
        ctx.directory
            .revoke_session(key)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    }
    let addr = gate::client_addr(&ctx, &req);
    ctx.record(Entry::new(
        person.name(),
        &person.roles_text(),
        &addr,
        "logout",
    ))
    .await;
    Ok(HttpResponse::Ok()
        .cookie(gate::session_cookie(&ctx, &req, None, 0))
        .json(serde_json::json!({ "signed_out": true })))
}

#[get("/api/me")]
async fn me(ctx: web::Data<WebContext>, person: Person) -> HttpResponse {
    let may = |p| person.may(p);
    let cities = &ctx.settings.cities;
    HttpResponse::Ok().json(serde_json::json!({
        "username": person.username,
        "roles": person.roles,
        "via": person.via,
        "display": person.via == Via::Display,
        "anonymous": person.via == Via::Anonymous,
        "cities": person.cities,
        "districts": person.districts,
        "may": {
            "personal_data": may(Permission::PersonalData),
            "dispatch": may(Permission::Dispatch),
            "traffic": may(Permission::Traffic),
            "acknowledge_alerts": may(Permission::AcknowledgeAlerts),
            "reports": may(Permission::Reports),
            "audit": may(Permission::Audit),
            "administer": may(Permission::Administer),
        },
        // The alarm flood limit the screens count against (ISA-18.2).
        "alerts": { "flood_per_10_min": ctx.settings.alerts.flood_per_10_min },
        // Each city's local time (`[cities]`): the screens show its clock.
        "time_zones": {
            "default": cities.default_time_zone,
            "cities": cities.time_zones,
        },
    }))
}

/// Signing in is public; signing out needs a session; `/api/me` answers
/// whoever may see the wall.
pub const ROUTES: &[Route] = &[
    page("/login", Rule::Public),
    post("/api/login", Rule::Public),
    post("/api/logout", Rule::Session),
    get("/api/me", Rule::Wall),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login_page)
        .service(login)
        .service(logout)
        .service(me);
}
