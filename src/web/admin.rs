//! The admin area: users (add, disable or enable, new password), wall
//! displays (add, revoke), and the audit log with its filters. Every change
//! is audited under the administrator who made it.

use super::routes::{get, page, post, Route, Rule};
use crate::identity::Permission;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{assets, gate, ApiError, WebContext};
use crate::identity::audit::Entry;
use crate::identity::directory::{AuditQuery, DirError, User};
use crate::identity::{password, Person, Role};

fn dir_error(e: DirError) -> ApiError {
    match e {
        DirError::Conflict(m) => ApiError::conflict(m),
        DirError::NotFound(m) => ApiError::not_found(m),
        DirError::Invalid(m) => ApiError::bad_request(m),
        e @ DirError::Store(_) => ApiError::unavailable(e.to_string()),
    }
}

#[get("/admin")]
async fn admin_page() -> HttpResponse {
    assets::serve("admin.html")
}

#[get("/admin/audit")]
async fn audit_page() -> HttpResponse {
    assets::serve("audit.html")
}

#[get("/api/admin/users")]
async fn users(ctx: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    let users = ctx.directory.users().await.map_err(dir_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users })))
}

/// A new user, as the admin screen sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    roles: Vec<String>,
    #[serde(default)]
    cities: Vec<String>,
    #[serde(default)]
    districts: Vec<String>,
    password: String,
}

/// Parses role names, refusing unknown ones.
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    let mut roles = Vec::new();
    for n in names {
        let r = Role::parse(n).ok_or_else(|| {
            format!(
                "unknown role {n:?}: one of {}",
                Role::ALL.map(Role::as_str).join(", ")
            )
        })?;
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    if roles.is_empty() {
        return Err("a user needs at least one role".into());
    }
    Ok(roles)
}

async fn hash(password: String) -> Result<String, ApiError> {
    web::block(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

#[post("/api/admin/users")]
async fn add_user(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let roles = parse_roles(&b.roles).map_err(ApiError::bad_request)?;
    let user = User {
        username: b.username.trim().to_ascii_lowercase(),
        roles,
        cities: b.cities,
        districts: b.districts,
        disabled: false,
        created: crate::identity::audit::stored_time(Utc::now()),
        password_hash: hash(b.password).await?,
    };
    let addr = gate::client_addr(&ctx, &req);
    ctx.directory
        .add_user(user.clone())
        .await
        .map_err(dir_error)?;
    ctx.record(
        Entry::new(person.name(), &person.roles_text(), &addr, "user_added")
            .entity(format!("user:{}", user.username))
            .detail(serde_json::json!({ "roles": user.roles, "cities": user.cities, "districts": user.districts })),
    )
    .await;
    Ok(HttpResponse::Created().json(user))
}

/// A change to one user: `{"disabled": bool}` or `{"password": text}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    disabled: Option<bool>,
    password: Option<String>,
}

#[post("/api/admin/users/{username}")]
async fn change_user(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
    body: web::Json<UserChange>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let b = body.into_inner();
    let addr = gate::client_addr(&ctx, &req);
    let entity = format!("user:{username}");
    match (b.disabled, b.password) {
        (Some(disabled), None) => {
            ctx.directory
                .set_disabled(&username, disabled)
                .await
                .map_err(dir_error)?;
            let action = if disabled {
                "user_disabled"
            } else {
                "user_enabled"
            };
            ctx.record(
                Entry::new(person.name(), &person.roles_text(), &addr, action).entity(entity),
            )
            .await;
        }
        (None, Some(password)) => {
            let h = hash(password).await?;
            ctx.directory
                .set_password(&username, h)
                .await
                .map_err(dir_error)?;
            ctx.record(
                Entry::new(person.name(), &person.roles_text(), &addr, "password_reset")
                    .entity(entity),
            )
            .await;
        }
        _ => {
            return Err(ApiError::bad_request(
                "send one change: {\"disabled\": true|false} or {\"password\": \"...\"}",
            ))
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "username": username, "changed": true })))
}

#[get("/api/admin/displays")]
async fn displays(ctx: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    let displays = ctx.directory.displays().await.map_err(dir_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "displays": displays })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDisplay {
    name: String,
    #[serde(default = "default_layout")]
    layout: String,
}

fn default_layout() -> String {
    "1080p".into()
}

#[post("/api/admin/displays")]
async fn add_display(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    body: web::Json<NewDisplay>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let token = ctx
        .directory
        .add_display(&b.name, &b.layout)
        .await
        .map_err(dir_error)?;
    let addr = gate::client_addr(&ctx, &req);
    ctx.record(
        Entry::new(person.name(), &person.roles_text(), &addr, "display_added")
            .entity(format!("display:{}", b.name))
            .detail(serde_json::json!({ "layout": b.layout })),
    )
    .await;
    // The token is shown once: the directory keeps only its hash.
    Ok(HttpResponse::Created().json(serde_json::json!({
        "name": b.name,
        "layout": b.layout,
        "token": token,
        "path": format!("/?display={token}"),
    })))
}

#[post("/api/admin/displays/{name}/revoke")]
async fn revoke_display(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    ctx.directory
        .revoke_display(&name)
        .await
        .map_err(dir_error)?;
    let addr = gate::client_addr(&ctx, &req);
    ctx.record(
        Entry::new(
            person.name(),
            &person.roles_text(),
            &addr,
            "display_revoked",
        )
        .entity(format!("display:{name}")),
    )
    .await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "name": name, "revoked": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    entity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// An optional RFC 3339 time parameter (empty: none).
pub(super) fn time(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!("{name}={s:?}: not an RFC 3339 time ({e})"))
                })
        })
        .transpose()
}

#[get("/api/admin/audit")]
async fn audit(
    ctx: web::Data<WebContext>,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(200);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request("limit must be 1..=10000"));
    }
    let empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let query = AuditQuery {
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        actor: empty(q.actor),
        action: empty(q.action),
        entity: empty(q.entity),
        limit,
    };
    let rows = ctx.directory.audit_rows(&query).await.map_err(dir_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rows": rows })))
}

/// Users and displays for admins; the audit for supervisors and admins.
pub const ROUTES: &[Route] = &[
    page("/admin", Rule::May(Permission::Administer)),
    page("/admin/audit", Rule::May(Permission::Audit)),
    get("/api/admin/users", Rule::May(Permission::Administer)),
    post("/api/admin/users", Rule::May(Permission::Administer)),
    post(
        "/api/admin/users/{username}",
        Rule::May(Permission::Administer),
    ),
    get("/api/admin/displays", Rule::May(Permission::Administer)),
    post("/api/admin/displays", Rule::May(Permission::Administer)),
    post(
        "/api/admin/displays/{name}/revoke",
        Rule::May(Permission::Administer),
    ),
    get("/api/admin/audit", Rule::May(Permission::Audit)),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(admin_page)
        .service(audit_page)
        .service(users)
        .service(add_user)
        .service(change_user)
        .service(displays)
        .service(add_display)
        .service(revoke_display)
        .service(audit);
}
