//! The OpenAPI 3.1 document of the HTTP API, served at `/api/openapi.json`.
//! It is built from the route table ([`super::routes::all`]), so no route
//! can be missing from it: each route with its summary and query parameters
//! ([`DOCS`], beside; a test fails for a route without a line there), its
//! path parameters (from its pattern), who may call it (the security scheme
//! of its rule) and, for the service applications' routes, its body's JSON
//! Schema from the bus contract (`/api/contract/schemas/{kind}`). utoipa's
//! typed model writes the document.

use actix_web::{get, HttpResponse};
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    Components, Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, Required, Response, Tag,
};

use super::routes::{self, Route, Rule};
use crate::identity::Role;

/// What the route table does not say of a route: its summary, and its
/// query parameters. One line per route (the static assets aside).
pub const DOCS: &[(&str, &str, &str, &[&str])] = &[
    ("GET", "/healthz", "Liveness: the process answers.", &[]),
    ("GET", "/readyz", "Readiness: 200 when every broker connection is up and subscribed, else 503; also the broker's last error, the store's state and TimescaleDB's failed jobs.", &[]),
    ("GET", "/metrics", "Prometheus metrics (loopback clients, or the metrics token).", &[]),
    ("GET", "/login", "The sign-in page.", &["next"]),
    ("POST", "/api/login", "Sign in with `{\"username\",\"password\"}`: sets the session cookie; 401 for a wrong name or password alike, 429 after repeated failures.", &[]),
    ("POST", "/api/logout", "End the session.", &[]),
    ("GET", "/api/me", "Who the screen serves: name, roles, scope, what they may do, every city's time zone.", &[]),
    ("GET", "/", "The wall.", &["layout", "screen", "city", "lang", "display"]),
    ("GET", "/services", "The services overview: every service application grouped by category, its headline KPI against its target, today's events by type, and the live feed of their events.", &["city", "lang"]),
    ("GET", "/api/state", "The whole live state as JSON; with at=T (RFC 3339), the state at T rebuilt from the store alone, in the same shape with \"at\" (and \"advanced_from\" when it went on from a replay's checkpoint in memory, \"checkpoint\" when it started from a stored one; 409 without a database).", &["at"]),
    ("GET", "/ws", "The live feed over a websocket: snapshot, deltas, resume (PROTOCOL.md).", &["cities", "families", "kinds", "districts", "view", "max_rate", "since", "epoch"]),
    ("GET", "/api/scenario", "A city's geometry and service catalogue: with city=C that city's (the simulated city's scenario or its imported map; null when unknown), without it the simulated city's, else the most recent import.", &["city"]),
    ("GET", "/api/history/atcs/{city}/{intersection}", "A junction's telemetry series.", &["metric", "approach", "from", "to", "bucket"]),
    ("GET", "/api/history/calls/{city}", "Call counts and answer times over time.", &["line", "category", "from", "to", "bucket"]),
    ("GET", "/api/history/units/{city}", "Unit status history.", &["unit", "from", "to"]),
    ("GET", "/api/history/kpi/{city}/{service}/{metric}", "A service KPI's series.", &["from", "to", "bucket"]),
    ("GET", "/api/history/commands/{city}/{intersection}", "The commands sent to one junction, newest first, each with its controller's first answer.", &["from", "to"]),
    ("GET", "/api/charts/kpi/{city}/{service}/{metric}.svg", "A KPI's history chart (SVG, drawn with plotters).", &["from", "to", "bucket", "width", "height", "target"]),
    ("GET", "/api/charts/atcs/{city}/{intersection}.svg", "A junction's history chart (SVG).", &["metric", "approach", "from", "to", "bucket", "width", "height"]),
    ("GET", "/api/charts/calls/{city}.svg", "Calls over time (SVG).", &["line", "category", "from", "to", "bucket", "width", "height"]),
    ("GET", "/api/contract/schemas/{kind}", "The JSON Schema of one bus message kind (e.g. `call_event`).", &[]),
    ("GET", "/api/openapi.json", "This document.", &[]),
    ("GET", "/api/deadletter", "Recent refused messages with their reasons, and counts by reason.", &["limit", "reason"]),
    ("POST", "/api/ingest/{city}/apps/{service}/events", "A service application's event, as the bus contract's `app_event`, published onto the bus: 202 with its `event_id`; 400/413 with the dead-letter `reason`; 401 unknown or revoked token; 403 another service's or city's; 429 past ingest.http_per_minute.", &[]),
    ("POST", "/api/ingest/{city}/kpi/{service}", "A service application's KPI sample, as the bus contract's `kpi_sample`, published onto the bus: 202 with its `metric` and `ts`; the same errors as an event's, 429 past ingest.http_per_minute included.", &[]),
    ("GET", "/traffic", "The traffic officer's console.", &["city", "lang"]),
    ("POST", "/api/atcs/{city}/{intersection}/command", "An operator command to a junction (`extend_green`, `set_plan`, `set_mode`, `announce`, with a `reason`), published on the bus with the user from the session; audited.", &[]),
    ("POST", "/api/atcs/{city}/{intersection}/auto", "Automatic mode for one junction on or off (`{\"enabled\",\"reason\"}`); audited.", &[]),
    ("GET", "/api/traffic/{city}/desk", "The announcement templates, the limits commands are held to, the junctions in automatic mode.", &[]),
    ("POST", "/api/traffic/{city}/corridor", "A green corridor for a dispatched unit (`{\"unit\",\"reason\",\"expires_in_s\"}`); audited.", &[]),
    ("GET", "/dispatch", "The dispatcher console.", &["city", "lang"]),
    ("POST", "/api/calls/{city}/{call_id}/actions", "A call taker's or dispatcher's action (answer, classify, locate, note, dispatch, reassign, cancel_unit, transfer, close, callback, merge), published as call events with the operator from the session; a retried `action_id` publishes once; audited.", &[]),
    ("GET", "/api/calls/{city}/{call_id}", "One call's projection and its stored events in time order.", &[]),
    ("GET", "/api/calls/{city}/{call_id}/recommend", "The three best free units for a located call, by estimated travel time on the city's roads.", &[]),
    ("GET", "/api/dispatch/targets", "The call-taking targets: the answer standard, the dispatch target per priority, the unit stage limits.", &[]),
    ("GET", "/api/alerts", "The live alerts, most urgent first; with `from`/`to`, every stored transition in that range.", &["city", "state", "priority", "rule", "entity", "from", "to"]),
    ("POST", "/api/alerts/{alert_id}/ack", "Acknowledge an alert (`{}` or `{\"reason\"}`): 202, pending until the transition is back through ingest; audited.", &[]),
    ("POST", "/api/alerts/{alert_id}/shelve", "Shelve an alert (`{\"reason\",\"minutes\"}`); audited.", &[]),
    ("POST", "/api/alerts/{alert_id}/unshelve", "Unshelve an alert; audited.", &[]),
    ("GET", "/reports", "The supervisors' reports page.", &[]),
    ("GET", "/reports/shift", "A shift handover report: a printable A4 page with its charts.", &["city", "from", "to", "lang"]),
    ("POST", "/api/reports/handover", "The incoming supervisor accepts a shift's handover (`{\"city\",\"from\",\"to\",\"note\"}`); audited with the figures' digest.", &[]),
    ("GET", "/admin", "The admin screen: users and wall displays.", &[]),
    ("GET", "/admin/audit", "The audit log screen.", &[]),
    ("GET", "/api/admin/users", "The users.", &[]),
    ("POST", "/api/admin/users", "Add a user (`{\"username\",\"roles\",\"cities\",\"districts\",\"password\"}`); audited.", &[]),
    ("POST", "/api/admin/users/{username}", "Change a user (`{\"disabled\"}` or `{\"password\"}`; ends their sessions); audited.", &[]),
    ("GET", "/api/admin/displays", "The wall displays.", &[]),
    ("POST", "/api/admin/displays", "Add a wall display (`{\"name\",\"layout\"}`): answers its token once; audited.", &[]),
    ("POST", "/api/admin/displays/{name}/revoke", "Revoke a wall display's token and end its sessions; audited.", &[]),
    ("GET", "/api/admin/audit", "Audit rows, newest first, each with its chain hash.", &["actor", "action", "entity", "from", "to", "limit"]),
];

/// The contract's message kind a route's body is.
fn body_kind(path: &str) -> Option<&'static str> {
    if path.ends_with("/apps/{service}/events") {
        Some("app_event")
    } else if path.starts_with("/api/ingest/") && path.contains("/kpi/") {
        Some("kpi_sample")
    } else {
        None
    }
}

/// The `{name}` segments of a route pattern.
fn path_parameters(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(|name| name.split(':').next().unwrap_or(name).to_owned())
        .collect()
}

/// The area a route belongs to (the document's tags).
fn tag(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "ingest", ..] => "service applications",
        ["api", "admin", ..] | ["admin", ..] => "administration",
        ["api", "atcs", ..] | ["api", "traffic", ..] | ["traffic"] => "traffic",
        ["api", "calls", ..] | ["api", "dispatch", ..] | ["dispatch"] => "dispatch",
        ["api", "alerts", ..] => "alerts",
        ["api", "reports", ..] | ["reports", ..] => "reports",
        ["api", "login"] | ["api", "logout"] | ["api", "me"] | ["login"] => "sessions",
        ["healthz"] | ["readyz"] | ["metrics"] => "operations",
        _ => "wall",
    }
}

fn security(rule: Rule) -> Vec<SecurityRequirement> {
    match rule {
        Rule::Public => Vec::new(),
        Rule::Metrics => vec![SecurityRequirement::new(
            "metrics_token",
            Vec::<String>::new(),
        )],
        Rule::App => vec![SecurityRequirement::new("app_token", Vec::<String>::new())],
        Rule::Wall | Rule::Session | Rule::May(_) => vec![
            SecurityRequirement::new("session", Vec::<String>::new()),
            SecurityRequirement::new("display_session", Vec::<String>::new()),
        ],
    }
}

/// Who may call, in words (the operation's description).
fn who(rule: Rule) -> String {
    match rule {
        Rule::Public => "Anyone.".into(),
        Rule::Metrics => "Loopback clients, or `Authorization: Bearer` with `http.metrics_token`.".into(),
        Rule::Wall => "Anyone signed in (a user or a wall display), or an anonymous client of `http.anonymous_wall_networks` (without callers' personal data).".into(),
        Rule::Session => "Anyone with a session.".into(),
        Rule::App => "A service application with its token (`kendali apps add SERVICE --city CITY`), for its own city and service.".into(),
        Rule::May(p) => {
            let roles: Vec<&str> = p.roles().into_iter().map(Role::as_str).collect();
            format!("A user with the role {}.", roles.join(", or "))
        }
    }
}

/// `post_api_alerts_alert_id_ack` for `POST /api/alerts/{alert_id}/ack`.
fn operation_id(r: &Route) -> String {
    let words: Vec<&str> = r
        .path
        .split(['/', '{', '}', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    format!("{}_{}", r.method.to_ascii_lowercase(), words.join("_"))
}

fn operation(r: &Route) -> Operation {
    let (summary, query) = DOCS
        .iter()
        .find(|(m, p, _, _)| *m == r.method && *p == r.path)
        .map_or(("", &[][..]), |(_, _, s, q)| (*s, *q));
    let mut op = Operation::builder()
        .summary(Some(summary))
        .description(Some(who(r.rule)))
        .operation_id(Some(operation_id(r)))
        .tag(tag(r.path));
    for name in path_parameters(r.path) {
        op = op.parameter(
            Parameter::builder()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    for name in query {
        op = op.parameter(
            Parameter::builder()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if let Some(kind) = body_kind(r.path) {
        op = op.request_body(Some(
            RequestBody::builder()
                .description(Some(format!(
                    "The bus contract's `{kind}` (CONTRACT.md), as it would be published"
                )))
                .required(Some(Required::True))
                .content(
                    "application/json",
                    Content::new(Some(Ref::new(format!("/api/contract/schemas/{kind}")))),
                )
                .build(),
        ));
    } else if r.method == "POST" {
        op = op.request_body(Some(
            RequestBody::builder()
                .description(Some("A JSON object, as the summary says"))
                .content("application/json", Content::new(None::<Ref>))
                .build(),
        ));
    }
    let ok = if r.page {
        Response::builder()
            .description("The page")
            .content("text/html", Content::new(None::<Ref>))
    } else if r.path.ends_with(".svg") {
        Response::builder()
            .description("The chart")
            .content("image/svg+xml", Content::new(None::<Ref>))
    } else if r.method == "POST" {
        Response::builder().description(
            "Done (200), or accepted (202): an action is done when its event comes back through ingest",
        )
    } else {
        Response::builder()
            .description("The answer")
            .content("application/json", Content::new(None::<Ref>))
    };
    op = op.response("2XX", ok).response(
        "4XX",
        Response::builder()
            .description("Refused: `{\"error\": \"...\"}` saying why (401 not signed in, 403 not allowed, 404, 409, 429 with Retry-After)")
            .content("application/json", Content::new(None::<Ref>)),
    );
    for s in security(r.rule) {
        op = op.security(s);
    }
    op.build()
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for r in routes::all() {
        if r.path == routes::ASSETS {
            continue;
        }
        let method = if r.method == "POST" {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        };
        let item = PathItem::new(method, operation(&r));
        match paths.paths.get_mut(r.path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                paths.paths.insert(r.path.to_owned(), item);
            }
        }
    }
    let mut components = Components::new();
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::SESSION_COOKIE,
            "The session cookie POST /api/login sets (HttpOnly, SameSite=Strict)",
        ))),
    );
    components.add_security_scheme(
        "display_session",
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "display",
            "A wall display's token, opened once at `/?display=TOKEN`: it becomes a session cookie",
        ))),
    );
    components.add_security_scheme(
        "app_token",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("kdl_app_...")
                .description(Some("A service application's token (`kendali apps add`)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "metrics_token",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("`http.metrics_token`"))
                .build(),
        ),
    );
    let mut tags: Vec<&str> = routes::all().iter().map(|r| tag(r.path)).collect();
    tags.sort();
    tags.dedup();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Kendali")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The HTTP API of a Kendali city operations room. Errors are JSON `{\"error\": \"...\"}`. \
                     The live feed is the websocket at /ws (PROTOCOL.md); the bus contract is CONTRACT.md, \
                     its JSON Schemas at /api/contract/schemas/{kind}.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some(tags.into_iter().map(Tag::new)))
        .build()
}

#[get("/api/openapi.json")]
async fn openapi() -> HttpResponse {
    match document().to_pretty_json() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/json")
            .body(text),
        Err(e) => HttpResponse::InternalServerError().json(
            serde_json::json!({ "error": format!("the document could not be written: {e}") }),
        ),
    }
}

/// The document is public: it holds no data, and integrators read it first.
pub const ROUTES: &[Route] = &[routes::get("/api/openapi.json", Rule::Public)];

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(openapi);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_summary_and_every_summary_a_route() {
        let all = routes::all();
        for r in all.iter().filter(|r| r.path != routes::ASSETS) {
            assert!(
                DOCS.iter()
                    .any(|(m, p, s, _)| *m == r.method && *p == r.path && !s.is_empty()),
                "{} {} has no line in DOCS",
                r.method,
                r.path
            );
        }
        for (m, p, _, _) in DOCS {
            assert!(
                all.iter().any(|r| r.method == *m && r.path == *p),
                "DOCS names {m} {p}, which is not a route"
            );
        }
    }

    #[test]
    fn path_parameters_come_from_the_pattern() {
        assert_eq!(
            path_parameters("/api/history/kpi/{city}/{service}/{metric}"),
            ["city", "service", "metric"]
        );
        assert_eq!(path_parameters("/api/charts/calls/{city}.svg"), ["city"]);
        assert!(path_parameters("/api/state").is_empty());
    }
}
