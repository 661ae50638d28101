//! The route table: every route the server answers, with the rule that
//! decides who may pass. The gate ([`super::gate`]) finds a request's route
//! here before any handler runs; a route missing from this table is never
//! reached (404), and the authorisation matrix test walks this table.

use actix_web::dev::ResourceDef;

use crate::identity::Permission;

/// Who may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Anyone: the login page, static assets, health.
    Public,
    /// Loopback clients, or a bearer token (`http.metrics_token`).
    Metrics,
    /// Anyone signed in (a user or a display), or an anonymous client of
    /// `http.anonymous_wall_networks` (a read-only wall without personal data).
    Wall,
    /// Anyone with a session (a user or a display).
    Session,
    /// A user holding this permission.
    May(Permission),
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    /// The pattern, as in the handler's attribute.
    pub path: &'static str,
    pub rule: Rule,
    /// A page: a browser without a session is sent to `/login`, not given a 401.
    pub page: bool,
}

const fn get(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "GET",
        path,
        rule,
        page: false,
    }
}

const fn page(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "GET",
        path,
        rule,
        page: true,
    }
}

const fn post(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "POST",
        path,
        rule,
        page: false,
    }
}

use Permission::*;
use Rule::*;

/// The static assets' pattern (web/'s files).
pub const ASSETS: &str = "/{path:.*\\.(js|css|html|svg|json|png|woff2|ico)}";

pub const ROUTES: &[Route] = &[
    // ops
    get("/healthz", Public),
    get("/readyz", Public),
    get("/metrics", Metrics),
    // auth
    page("/login", Public),
    post("/api/login", Public),
    post("/api/logout", Session),
    get("/api/me", Wall),
    // the wall
    page("/", Wall),
    get("/api/state", Wall),
    get("/ws", Wall),
    get("/api/scenario", Wall),
    get("/api/history/atcs/{city}/{intersection}", Wall),
    get("/api/history/calls/{city}", Wall),
    get("/api/history/units/{city}", Wall),
    get("/api/history/kpi/{city}/{service}/{metric}", Wall),
    get("/api/charts/kpi/{city}/{service}/{metric}.svg", Wall),
    get("/api/charts/atcs/{city}/{intersection}.svg", Wall),
    get("/api/charts/calls/{city}.svg", Wall),
    // the integration api
    get("/api/contract/schemas/{kind}", Wall),
    get("/api/deadletter", May(Audit)),
    // traffic
    post("/api/atcs/{city}/{intersection}/command", May(Traffic)),
    // admin
    page("/admin", May(Administer)),
    page("/admin/audit", May(Audit)),
    get("/api/admin/users", May(Administer)),
    post("/api/admin/users", May(Administer)),
    post("/api/admin/users/{username}", May(Administer)),
    get("/api/admin/displays", May(Administer)),
    post("/api/admin/displays", May(Administer)),
    post("/api/admin/displays/{name}/revoke", May(Administer)),
    get("/api/admin/audit", May(Audit)),
    // static assets last: they match many paths
    get(ASSETS, Public),
];

/// The compiled table (patterns parsed once).
pub struct Table {
    defs: Vec<(ResourceDef, Route)>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            defs: ROUTES
                .iter()
                .map(|r| (ResourceDef::new(r.path), *r))
                .collect(),
        }
    }
}

/// What the table says of a request.
pub enum Found {
    Route(Route),
    /// The path is a route, with another method.
    WrongMethod,
    NotFound,
}

impl Table {
    pub fn find(&self, method: &str, path: &str) -> Found {
        let mut path_known = false;
        for (def, r) in &self.defs {
            if def.is_match(path) {
                if r.method == method || (method == "HEAD" && r.method == "GET") {
                    return Found::Route(*r);
                }
                path_known = true;
            }
        }
        if path_known {
            Found::WrongMethod
        } else {
            Found::NotFound
        }
    }
}
