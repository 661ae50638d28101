//! The gate every request passes before its handler: the `Host` must be one
//! of the server's names (so a DNS-rebinding page cannot read the room
//! through an operator's browser), a state-changing request's `Origin` must
//! be the server's own or an allowed one, the route must be in the route
//! table, and the person behind the request must satisfy the route's rule.
//! It also opens a wall display's session from its token, admits a service
//! application by its token, and puts the security headers on every answer.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use ipnet::IpNet;

use super::routes::{Found, Rule};
use super::{ApiError, WebContext, SESSION_COOKIE};
use crate::config::HttpSettings;
use crate::identity::audit::Entry;
use crate::identity::directory::{AppToken, Holder};
use crate::identity::{Person, Via};

/// The screens' Content-Security-Policy: nothing inline, nothing from elsewhere.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// What the gate checks against, parsed from `[http]` once.
pub struct AccessSettings {
    pub anonymous_wall: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    /// Host names answered besides IP addresses and `localhost`.
    pub server_names: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub metrics_token: Option<String>,
    /// The server speaks HTTPS itself (cookies get `Secure`).
    pub tls: bool,
}

impl AccessSettings {
    /// From validated settings (the networks parse).
    pub fn new(h: &HttpSettings) -> AccessSettings {
        let nets = |v: &[String]| v.iter().filter_map(|n| n.parse().ok()).collect();
        AccessSettings {
            anonymous_wall: nets(&h.anonymous_wall_networks),
            trusted_proxies: nets(&h.trusted_proxies),
            server_names: h
                .server_names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            allowed_origins: h.allowed_origins.clone(),
            metrics_token: h.metrics_token.clone(),
            tls: h.tls_cert.is_some(),
        }
    }
}

fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip().to_canonical())
}

fn from_proxy(ctx: &WebContext, req: &HttpRequest) -> bool {
    peer_ip(req).is_some_and(|ip| ctx.access.trusted_proxies.iter().any(|n| n.contains(&ip)))
}

/// The client's address: the peer's, or, behind a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(ctx: &WebContext, req: &HttpRequest) -> Option<IpAddr> {
    let peer = peer_ip(req)?;
    if !from_proxy(ctx, req) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .map(|ip| ip.to_canonical())
            .find(|ip| !ctx.access.trusted_proxies.iter().any(|n| n.contains(ip)))
            .unwrap_or(peer),
    )
}

/// The client's address as text (for the audit and throttles).
pub fn client_addr(ctx: &WebContext, req: &HttpRequest) -> String {
    client_ip(ctx, req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The host the request was sent to (`name[:port]`), as the client wrote it.
fn request_host(ctx: &WebContext, req: &HttpRequest) -> Option<String> {
    if from_proxy(ctx, req) {
        if let Some(h) = req
            .headers()
            .get("x-forwarded-host")
            .and_then(|h| h.to_str().ok())
        {
            return Some(h.trim().to_ascii_lowercase());
        }
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .map(|h| h.to_ascii_lowercase())
}

/// The scheme the client used.
fn request_scheme(ctx: &WebContext, req: &HttpRequest) -> &'static str {
    if ctx.access.tls {
        return "https";
    }
    let forwarded_https = from_proxy(ctx, req)
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    if forwarded_https {
        "https"
    } else {
        "http"
    }
}

/// The name part of `host[:port]` (IPv6 literals keep their brackets off).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// IP literals and `localhost` are always answered (a rebinding attack needs
/// a name the attacker controls); other names only if configured.
fn host_allowed(ctx: &WebContext, host: &str) -> bool {
    let name = host_name(host);
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || ctx.access.server_names.iter().any(|n| n == name)
}

/// Whether an `Origin` may make requests here: the server's own (the scheme
/// and host the request came to, the host being checked), or an allowed one.
pub fn origin_allowed(ctx: &WebContext, req: &HttpRequest, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let own = request_host(ctx, req).is_some_and(|host| {
        origin.eq_ignore_ascii_case(&format!("{}://{host}", request_scheme(ctx, req)))
    });
    own || ctx
        .access
        .allowed_origins
        .iter()
        .any(|a| a == origin || a == "*")
}

fn secure(mut res: ServiceResponse<BoxBody>, tls: bool) -> ServiceResponse<BoxBody> {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// The session cookie for a token (`None`: the cookie that removes it);
/// `Secure` when the client came over HTTPS (here or at a trusted proxy).
pub fn session_cookie(
    ctx: &WebContext,
    req: &HttpRequest,
    token: Option<&str>,
    max_age_s: i64,
) -> Cookie<'static> {
    let mut c = Cookie::build(SESSION_COOKIE, token.unwrap_or("").to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(request_scheme(ctx, req) == "https")
        .finish();
    c.set_max_age(CookieDuration::seconds(if token.is_some() {
        max_age_s
    } else {
        0
    }));
    c
}

fn refuse(req: ServiceRequest, e: ApiError, tls: bool) -> ServiceResponse<BoxBody> {
    let res = e.error_response();
    secure(req.into_response(res), tls)
}

fn to_login(req: ServiceRequest, tls: bool) -> ServiceResponse<BoxBody> {
    let next = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    let location = format!(
        "/login?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish();
    secure(req.into_response(res), tls)
}

/// Opens a display's session from `/?display=TOKEN` and sends the browser
/// on to the wall without the token in its address.
async fn open_display(
    ctx: &WebContext,
    req: ServiceRequest,
    token: &str,
) -> ServiceResponse<BoxBody> {
    let tls = ctx.access.tls;
    let addr = client_addr(ctx, req.request());
    let display = match ctx.directory.display_by_token(token).await {
        Ok(d) => d,
        Err(e) => return refuse(req, ApiError::unavailable(e.to_string()), tls),
    };
    let Some((name, layout)) = display else {
        ctx.record(
            Entry::new("anonymous", "", &addr, "display_session").outcome("refused_unknown_token"),
        )
        .await;
        return refuse(
            req,
            ApiError::unauthorized(
                "this display token is unknown or revoked: ask an administrator for a new one",
            ),
            tls,
        );
    };
    let lifetime = ctx.timeouts.display;
    let session = ctx
        .directory
        .open_session(Holder::Display(name.clone()), &addr, lifetime)
        .await;
    let session_token = match session {
        Ok(t) => t,
        Err(e) => return refuse(req, ApiError::unavailable(e.to_string()), tls),
    };
    ctx.record(
        Entry::new(&format!("display:{name}"), "wall", &addr, "display_session")
            .entity(format!("display:{name}")),
    )
    .await;
    // The wall's other parameters stay; the token leaves the address bar.
    let mut kept: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .filter(|(k, _)| k != "display")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if !kept.iter().any(|(k, _)| k == "layout") {
        kept.push(("layout".into(), layout));
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    let res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/?{query}")))
        .cookie(session_cookie(
            ctx,
            req.request(),
            Some(&session_token),
            lifetime.num_seconds(),
        ))
        .finish();
    secure(req.into_response(res), tls)
}

/// A service application's request: admitted with its token
/// (`Authorization: Bearer`), which the handler then holds ([`AppToken`]).
async fn admit_app(
    ctx: &WebContext,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let tls = ctx.access.tls;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let Some(token) = bearer else {
        let e = ApiError::unauthorized(
            "send the application's token as `Authorization: Bearer kdl_app_...` \
             (the city's IT staff make one with `kendali apps add SERVICE --city CITY`)",
        );
        return Ok(refuse(req, e, tls));
    };
    match ctx.directory.app_by_token(&token).await {
        Ok(Some(app)) => {
            req.extensions_mut().insert(app);
            Ok(secure(next.call(req).await?.map_into_boxed_body(), tls))
        }
        Ok(None) => {
            let e = ApiError::unauthorized(
                "this application token is unknown or revoked: ask the city's IT staff for a new one",
            );
            Ok(refuse(req, e, tls))
        }
        Err(e) => {
            let e = ApiError::unavailable(format!("application tokens could not be read: {e}"));
            Ok(refuse(req, e, tls))
        }
    }
}

/// The middleware.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(ctx) = req.app_data::<web::Data<WebContext>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let tls = ctx.access.tls;
    // The host first: nothing is answered to a name the server does not hold.
    match request_host(&ctx, req.request()) {
        Some(h) if host_allowed(&ctx, &h) => {}
        h => {
            let e = ApiError::bad_request(format!(
                "this server does not answer to host {:?}: add the name to http.server_names",
                h.unwrap_or_default()
            ));
            return Ok(refuse(req, e, tls));
        }
    }
    let route = match ctx.routes.find(req.method().as_str(), req.path()) {
        Found::Route(r) => r,
        Found::WrongMethod => {
            let e = ApiError::new(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {}", req.method(), req.path()),
            );
            return Ok(refuse(req, e, tls));
        }
        Found::NotFound => {
            let e = ApiError::not_found(format!("no route {}", req.path()));
            return Ok(refuse(req, e, tls));
        }
    };
    // Cross-site requests: a state-changing request from a page of another
    // origin is refused (SameSite=Strict cookies are the second guard).
    if !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            if !origin_allowed(&ctx, req.request(), origin) {
                let e = ApiError::forbidden(format!(
                    "cross-site request refused: origin {:?} is not this server's (see http.allowed_origins)",
                    origin.to_str().unwrap_or("?")
                ));
                return Ok(refuse(req, e, tls));
            }
        }
    }
    if route.rule == Rule::Public {
        return Ok(secure(next.call(req).await?.map_into_boxed_body(), tls));
    }
    if route.rule == Rule::Metrics {
        let loopback = peer_ip(req.request()).is_some_and(|ip| ip.is_loopback())
            && !from_proxy(&ctx, req.request());
        let bearer = ctx.access.metrics_token.as_deref().is_some_and(|t| {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h == format!("Bearer {t}"))
        });
        if loopback || bearer {
            return Ok(secure(next.call(req).await?.map_into_boxed_body(), tls));
        }
        let e = ApiError::unauthorized(
            "metrics are served to loopback clients, or with `Authorization: Bearer` and http.metrics_token",
        );
        return Ok(refuse(req, e, tls));
    }
    if route.rule == Rule::App {
        return admit_app(&ctx, req, next).await;
    }
    // A wall display opening its session.
    if req.path() == "/" {
        let token = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "display")
            .map(|(_, v)| v.into_owned());
        if let Some(token) = token {
            return Ok(open_display(&ctx, req, &token).await);
        }
    }
    // Who is asking.
    let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let mut ended = false;
    let mut person = None;
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        match ctx.directory.resolve(&token, &ctx.timeouts, true).await {
            Ok(Some(r)) => person = Some(r.person),
            Ok(None) => ended = true,
            Err(e) => {
                tracing::warn!(error = %e, "sessions could not be read");
                let e = ApiError::unavailable(format!("sessions could not be read: {e}"));
                return Ok(refuse(req, e, tls));
            }
        }
    }
    let anonymous_allowed = client_ip(&ctx, req.request())
        .is_some_and(|ip| ctx.access.anonymous_wall.iter().any(|n| n.contains(&ip)));
    let decision: Result<Person, ApiError> = match (route.rule, person) {
        (Rule::Wall, Some(p)) => Ok(p),
        // An ended session is told so (its screen goes to the sign-in page)
        // rather than quietly becoming the anonymous wall.
        (Rule::Wall, None) if anonymous_allowed && !ended => Ok(Person::anonymous_wall()),
        (Rule::Session, Some(p)) if p.via != Via::Anonymous => Ok(p),
        (Rule::May(perm), Some(p)) => {
            if p.may(perm) {
                Ok(p)
            } else {
                let e = ApiError::forbidden(format!(
                    "your role ({}) does not allow this",
                    p.roles_text()
                ));
                // An action refused for the role is audited like any other
                // refused action (a page or a read is not an action).
                if req.method() == actix_web::http::Method::POST {
                    let addr = client_addr(&ctx, req.request());
                    let entry = Entry::new(p.name(), &p.roles_text(), &addr, "refused_role")
                        .entity(format!("{} {}", req.method(), req.path()))
                        .outcome("refused")
                        .detail(serde_json::json!({ "refused": e.message }));
                    ctx.record(entry).await;
                }
                Err(e)
            }
        }
        _ if ended => Err(ApiError::unauthorized(
            "your session has ended (signed out, expired or revoked): sign in again",
        )),
        _ => Err(ApiError::unauthorized("sign in first (POST /api/login)")),
    };
    match decision {
        Ok(p) => {
            req.extensions_mut().insert(p);
            Ok(secure(next.call(req).await?.map_into_boxed_body(), tls))
        }
        Err(e) if e.status == actix_web::http::StatusCode::UNAUTHORIZED && route.page => {
            Ok(to_login(req, tls))
        }
        Err(e) => Ok(refuse(req, e, tls)),
    }
}

/// The person the gate admitted (handlers take it as an argument).
impl FromRequest for Person {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Person, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Person>()
                .cloned()
                .ok_or_else(|| ApiError::unauthorized("sign in first (POST /api/login)")),
        )
    }
}

/// The application the gate admitted on an [`Rule::App`] route.
impl FromRequest for AppToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<AppToken, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<AppToken>()
                .cloned()
                .ok_or_else(|| ApiError::unauthorized("an application token is required")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("kendali.kota.go.id:8080"), "kendali.kota.go.id");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8080"), "::1");
    }
}
