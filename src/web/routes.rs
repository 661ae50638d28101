//! The route table: every route the server answers, with the rule that
//! decides who may pass. Each area declares its routes beside its handlers
//! (`ROUTES` in each module); [`all`] gathers them. The gate
//! ([`super::gate`]) finds a request's route here before any handler runs; a
//! route missing from the table is never reached (404), and the
//! authorisation matrix test walks the table.

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
    /// A service application's token (`Authorization: Bearer kdl_app_...`,
    /// from `kendali apps add`); the handler checks its city and service.
    App,
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

pub const fn get(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "GET",
        path,
        rule,
        page: false,
    }
}

pub const fn page(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "GET",
        path,
        rule,
        page: true,
    }
}

pub const fn post(path: &'static str, rule: Rule) -> Route {
    Route {
        method: "POST",
        path,
        rule,
        page: false,
    }
}

/// The static assets' pattern (web/'s files).
pub const ASSETS: &str = "/{path:.*\\.(js|css|html|svg|json|png|woff2|ico)}";

/// Every area's routes, each declared beside its handlers (the area's
/// guard); the static assets last, as they match many paths.
pub fn all() -> Vec<Route> {
    [
        super::ops::ROUTES,
        super::auth::ROUTES,
        super::wall::ROUTES,
        super::api::ROUTES,
        super::ingest::ROUTES,
        super::openapi::ROUTES,
        super::alerts::ROUTES,
        super::traffic::ROUTES,
        super::dispatch::ROUTES,
        super::reports::ROUTES,
        super::admin::ROUTES,
        super::assets::ROUTES,
    ]
    .concat()
}

/// The compiled table (patterns parsed once).
pub struct Table {
    defs: Vec<(ResourceDef, Route)>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            defs: all()
                .into_iter()
                .map(|r| (ResourceDef::new(r.path), r))
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
