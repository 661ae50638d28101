//! Who may act: the authorisation matrix generated from the route table,
//! sign-in and its bad inputs, sessions that end, display tokens, callers'
//! personal data by role, cross-site and rebinding requests, per-user
//! throttles, and the hash-chained audit with `kendali audit verify`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kendali::contract::{self, MessageKind};
use kendali::identity::directory::Holder;
use kendali::web::routes::{self, Rule};
use serde_json::{json, Value};

use crate::support::{self, kendali, Publisher, Screen};

/// Publishes the example junction `simpang-pci` (district `Cibeber`) into
/// `city`; the publisher is kept until the message is known to have arrived.
async fn junction(url: &str, city: &str) -> Publisher {
    let (_, info) = contract::messages::example(
        MessageKind::IntersectionInfo,
        chrono::Utc::now().with_timezone(&kendali::domain::wib()),
    );
    let p = Publisher::connect(url).await;
    p.send(
        &format!("city/{city}/atcs/simpang-pci/info"),
        1,
        info.to_json(),
    )
    .await;
    p
}

fn call_event(city_line: (&str, &str), call: &str, kind: &str, extra: Value) -> (String, String) {
    let (city, line) = city_line;
    let mut v = json!({
        "event_id": uuid::Uuid::new_v4(),
        "call_id": call,
        "ts": chrono::Utc::now().with_timezone(&kendali::domain::wib()).to_rfc3339(),
        "line": line,
        "type": kind,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    (format!("city/{city}/calls/{line}"), v.to_string())
}

/// A concrete path for a route pattern, and a body that the route accepts
/// when the caller may use it (so that the status shows the gate's decision,
/// not a bad request).
fn request_for(pattern: &str, city: &str, persona: &str) -> (String, Option<Value>) {
    let path = pattern
        .replace("{city}", city)
        .replace("{intersection}", "simpang-pci")
        .replace("{service}", "perizinan")
        .replace("{metric}", "queue")
        .replace("{kind}", "call_event")
        .replace("{username}", "matrix-target")
        .replace("{name}", "matrix-display")
        .replace("{call_id}", "matrix-call")
        .replace(kendali::web::routes::ASSETS, "/js/boot.js");
    let body = match pattern {
        "/api/login" => {
            Some(json!({ "username": "matrix-login", "password": "matrix-login-sandi-rahasia" }))
        }
        "/api/atcs/{city}/{intersection}/command" => Some(
            json!({ "action": "extend_green", "approach": "utara", "seconds": 10, "reason": "uji" }),
        ),
        "/api/atcs/{city}/{intersection}/auto" => {
            Some(json!({ "enabled": false, "reason": "uji" }))
        }
        "/api/admin/users" => Some(json!({
            "username": format!("made-by-{persona}").replace('_', "-"),
            "roles": ["operator"],
            "password": "sandi-baru-panjang",
        })),
        "/api/admin/users/{username}" => Some(json!({ "disabled": false })),
        "/api/admin/displays" => Some(json!({
            "name": format!("wall-by-{persona}").replace('_', "-"),
            "layout": "4k",
        })),
        p if p.starts_with("/api/")
            && routes::all()
                .iter()
                .any(|r| r.path == p && r.method == "POST") =>
        {
            Some(json!({}))
        }
        _ => None,
    };
    (path, body)
}

/// Who may use each route, written out here apart from the route table
/// (`src/web/routes.rs`): the test fails when the two disagree, when a route
/// has no line here, and when the server does otherwise. `wall`: anyone
/// signed in (or the anonymous wall on its networks); `session`: anyone
/// signed in; `app`: a service application's token (`kendali apps add`),
/// which no session gives; otherwise the roles admitted.
const WHO_MAY: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "public"),
    ("GET", "/readyz", "public"),
    ("GET", "/metrics", "loopback"),
    ("GET", "/login", "public"),
    ("POST", "/api/login", "public"),
    ("POST", "/api/logout", "session"),
    ("GET", "/api/me", "wall"),
    ("GET", "/", "wall"),
    ("GET", "/services", "wall"),
    ("GET", "/api/state", "wall"),
    ("GET", "/ws", "wall"),
    ("GET", "/api/scenario", "wall"),
    ("GET", "/api/history/atcs/{city}/{intersection}", "wall"),
    ("GET", "/api/history/calls/{city}", "wall"),
    ("GET", "/api/history/units/{city}", "wall"),
    ("GET", "/api/history/kpi/{city}/{service}/{metric}", "wall"),
    (
        "GET",
        "/api/charts/kpi/{city}/{service}/{metric}.svg",
        "wall",
    ),
    ("GET", "/api/charts/atcs/{city}/{intersection}.svg", "wall"),
    ("GET", "/api/charts/calls/{city}.svg", "wall"),
    ("GET", "/api/contract/schemas/{kind}", "wall"),
    ("GET", "/api/openapi.json", "public"),
    ("GET", "/api/deadletter", "supervisor admin"),
    ("POST", "/api/ingest/{city}/apps/{service}/events", "app"),
    ("POST", "/api/ingest/{city}/kpi/{service}", "app"),
    (
        "POST",
        "/api/atcs/{city}/{intersection}/command",
        "traffic_officer supervisor",
    ),
    ("GET", "/api/history/commands/{city}/{intersection}", "wall"),
    ("GET", "/traffic", "traffic_officer supervisor"),
    (
        "POST",
        "/api/atcs/{city}/{intersection}/auto",
        "traffic_officer supervisor",
    ),
    (
        "GET",
        "/api/traffic/{city}/desk",
        "traffic_officer supervisor",
    ),
    (
        "POST",
        "/api/traffic/{city}/corridor",
        "traffic_officer supervisor",
    ),
    ("GET", "/dispatch", "dispatcher supervisor"),
    (
        "POST",
        "/api/calls/{city}/{call_id}/actions",
        "dispatcher supervisor",
    ),
    (
        "GET",
        "/api/calls/{city}/{call_id}",
        "dispatcher supervisor",
    ),
    ("GET", "/api/dispatch/targets", "wall"),
    ("GET", "/api/alerts", "wall"),
    (
        "POST",
        "/api/alerts/{alert_id}/ack",
        "operator dispatcher traffic_officer supervisor",
    ),
    (
        "POST",
        "/api/alerts/{alert_id}/shelve",
        "operator dispatcher traffic_officer supervisor",
    ),
    (
        "POST",
        "/api/alerts/{alert_id}/unshelve",
        "operator dispatcher traffic_officer supervisor",
    ),
    (
        "GET",
        "/api/calls/{city}/{call_id}/recommend",
        "dispatcher supervisor",
    ),
    ("GET", "/reports", "supervisor"),
    ("GET", "/reports/shift", "supervisor"),
    ("POST", "/api/reports/handover", "supervisor"),
    ("GET", "/admin", "admin"),
    ("GET", "/admin/audit", "supervisor admin"),
    ("GET", "/api/admin/users", "admin"),
    ("POST", "/api/admin/users", "admin"),
    ("POST", "/api/admin/users/{username}", "admin"),
    ("GET", "/api/admin/displays", "admin"),
    ("POST", "/api/admin/displays", "admin"),
    ("POST", "/api/admin/displays/{name}/revoke", "admin"),
    ("GET", "/api/admin/audit", "supervisor admin"),
    ("GET", kendali::web::routes::ASSETS, "public"),
];

/// What a persona gets from a route: `None` when admitted (any status but
/// 401, 403 and a redirect to the sign-in page), else the refusal's status.
fn expected(who: &str, role: Option<&str>, scoped_elsewhere: bool, path: &str) -> Option<u16> {
    match (who, role) {
        ("public" | "loopback", _) => None,
        // A service application's token, which no person holds.
        ("app", _) => Some(401),
        ("wall" | "session", Some(_)) => None,
        (_, None) => Some(401),
        (roles, Some(role)) => {
            if !roles.split(' ').any(|r| r == role) {
                Some(403)
            } else if scoped_elsewhere && (path.ends_with("/command") || path.ends_with("/auto")) {
                // Admitted by the gate, refused by the handler: not their district.
                Some(403)
            } else {
                None
            }
        }
    }
}

/// The route table's rule, in the words of [`WHO_MAY`].
fn rule_words(rule: Rule) -> String {
    match rule {
        Rule::Public => "public".into(),
        Rule::Metrics => "loopback".into(),
        Rule::Wall => "wall".into(),
        Rule::Session => "session".into(),
        Rule::App => "app".into(),
        Rule::May(p) => p
            .roles()
            .into_iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Every route and the websocket, for an anonymous client off the allowed
/// networks, each role, and a traffic officer of another district: the
/// status the route table's rule names. A route declared in src/web without
/// a rule in the table fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_admits_exactly_whom_its_rule_names() {
    let test = "every_route_admits_exactly_whom_its_rule_names";
    let Some(url) = support::mosquitto(test) else {
        return;
    };
    let declared = support::declared_routes();
    let all = routes::all();
    let table: BTreeSet<(String, String)> = all
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        declared, table,
        "every route declared in src/web has exactly one rule in src/web/routes.rs"
    );
    let spec: BTreeSet<(String, String)> = WHO_MAY
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(spec, table, "every route has a line in WHO_MAY");
    for r in &all {
        let who = WHO_MAY
            .iter()
            .find(|(m, p, _)| *m == r.method && *p == r.path)
            .unwrap()
            .2;
        assert_eq!(
            rule_words(r.rule),
            who,
            "{} {}: the table's rule",
            r.method,
            r.path
        );
    }

    let mut settings = support::settings(Some(url.clone()));
    // As in production: no anonymous wall.
    settings.http.anonymous_wall_networks = Vec::new();
    let app = support::spawn(settings).await;
    let city = support::city("matrix");
    let p = junction(&url, &city).await;
    let (topic, ring) = call_event((&city, "112"), "matrix-call", "received", json!({}));
    p.send(&topic, 1, ring).await;
    let admin = support::sign_in(&app, "matrix-setup", &["admin"], &[], &[]).await;
    // The junction and the call are known before any action is tried.
    for (kind, key) in [
        ("intersection", format!("{city}/simpang-pci")),
        ("call", format!("{city}/matrix-call")),
    ] {
        support::eventually(10, &format!("the {kind} known"), || {
            let (c, u) = (admin.client.clone(), support::http(&app, "/api/state"));
            let key = key.clone();
            async move {
                let s: Value = c.get(u).send().await.ok()?.json().await.ok()?;
                s["entities"][kind].get(&key).map(|_| ())
            }
        })
        .await;
    }
    // What the routes act on.
    support::sign_in(&app, "matrix-target", &["operator"], &[], &[]).await;
    support::sign_in(&app, "matrix-login", &["operator"], &[], &[]).await;
    app.directory
        .add_display("matrix-display", "4k")
        .await
        .unwrap();

    let mut personas: Vec<(String, Option<&str>, bool, Option<reqwest::Client>)> =
        vec![("anonymous".into(), None, false, None)];
    for role in kendali::identity::Role::ALL {
        let name = format!("matrix-{}", role.as_str().replace('_', "-"));
        let s = support::sign_in(&app, &name, &[role.as_str()], &[], &[]).await;
        personas.push((
            role.as_str().into(),
            Some(role.as_str()),
            false,
            Some(s.client),
        ));
    }
    let elsewhere = support::sign_in(
        &app,
        "matrix-officer-elsewhere",
        &["traffic_officer"],
        &[],
        &["Citangkil"],
    )
    .await;
    personas.push((
        "traffic_officer of another district".into(),
        Some("traffic_officer"),
        true,
        Some(elsewhere.client),
    ));

    // Logout last: it ends the persona's session.
    let mut routes = all.clone();
    routes.sort_by_key(|r| r.path == "/api/logout");
    let mut checked = 0;
    let mut failures = Vec::new();
    for (persona, role, elsewhere, client) in &personas {
        let client = client.clone().unwrap_or_else(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        });
        for r in &routes {
            let (path, body) = request_for(r.path, &city, persona);
            let mut req = client.request(r.method.parse().unwrap(), support::http(&app, &path));
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.expect("the server answers");
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let text = resp.text().await.unwrap_or_default();
            let who = WHO_MAY
                .iter()
                .find(|(m, p, _)| *m == r.method && *p == r.path)
                .unwrap()
                .2;
            let want = expected(who, *role, *elsewhere, r.path);
            let ok = match want {
                None => ![401, 403, 404, 405].contains(&status) && !location.starts_with("/login"),
                Some(401) if r.page => status == 303 && location.starts_with("/login?next="),
                Some(s) => status == s && text.contains("\"error\""),
            };
            if !ok {
                failures.push(format!(
                    "{persona}: {} {path}: got {status} {location} {text:.120}, want {}",
                    r.method,
                    want.map_or("admitted".to_owned(), |s| s.to_string())
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, all.len() * personas.len());
    println!(
        "authorisation matrix: {} routes x {} personas",
        all.len(),
        personas.len()
    );
    app.stop().await;
}

/// The one-command start still shows the room at once: a loopback client
/// gets the wall without signing in, but never a caller's address, position
/// or note, over `/ws` (snapshot and delta) and `/api/state`; a dispatcher
/// on the same server gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_wall_needs_no_login_and_sees_no_personal_data() {
    let test = "the_loopback_wall_needs_no_login_and_sees_no_personal_data";
    let Some(url) = support::mosquitto(test) else {
        return;
    };
    let app = support::spawn(support::settings(Some(url.clone()))).await;
    let city = support::city("pii");
    let page = reqwest::get(support::http(&app, "/")).await.unwrap();
    assert_eq!(page.status(), 200, "the wall without login on loopback");
    let me: Value = support::get_json(&app, "/api/me").await;
    assert_eq!(me["anonymous"], true, "{me}");
    assert_eq!(me["may"]["personal_data"], false, "{me}");

    let dispatcher = support::sign_in(&app, "dispatcher-pii", &["dispatcher"], &[], &[]).await;
    let query = format!("cities={city}&families=calls");
    let mut wall = Screen::connect(&app, &query).await;
    let mut desk = Screen::connect_as(&app, &query, Some(&dispatcher.cookie)).await;
    for s in [&mut wall, &mut desk] {
        s.until(10, "the snapshot", |s| !s.frames.is_empty()).await;
    }
    let p = Publisher::connect(&url).await;
    let caller = json!({ "caller": { "lat": -6.0170, "lon": 106.0540, "address": "Jl. Rahasia No. 7" }, "note": "pelapor: Ibu Siti 0812-0000" });
    let (topic, payload) = call_event((&city, "112"), "pii-1", "received", caller);
    p.send(&topic, 1, payload).await;
    for s in [&mut wall, &mut desk] {
        s.until(10, "the call event", |s| {
            s.events.iter().any(|(_, k, _)| k == "call_event")
        })
        .await;
    }
    let event = |s: &Screen| {
        s.events
            .iter()
            .find(|(_, k, _)| k == "call_event")
            .unwrap()
            .2
            .clone()
    };
    let (w, d) = (event(&wall), event(&desk));
    assert!(
        w["caller"].is_null() && w["note"].is_null(),
        "the wall's delta: {w}"
    );
    assert_eq!(w["line"], "112");
    assert_eq!(d["caller"]["address"], "Jl. Rahasia No. 7", "{d}");
    assert!(d["note"].as_str().unwrap().contains("Siti"));

    // The same in a new snapshot and in /api/state.
    let key = format!("{city}/pii-1");
    let mut late = Screen::connect(&app, &query).await;
    late.until(10, "the call in the snapshot", |s| {
        s.entities.contains_key(&("call".to_owned(), key.clone()))
    })
    .await;
    let snap = &late.entities[&("call".to_owned(), key.clone())].1;
    assert!(snap["caller"].is_null(), "the wall's snapshot: {snap}");
    assert_eq!(snap["stage"], "received");
    support::entity(&app, "call", &key, "the call in the state").await;
    let state = support::get_json(&app, "/api/state").await;
    let text = state.to_string();
    assert!(
        !text.contains("Rahasia") && !text.contains("Siti"),
        "anonymous /api/state holds personal data"
    );
    let state: Value = dispatcher.get_json(&app, "/api/state").await;
    assert_eq!(
        state["entities"]["call"][&key]["caller"]["address"],
        "Jl. Rahasia No. 7"
    );
    // Actions are not for the anonymous wall.
    let r = reqwest::Client::new()
        .post(support::http(
            &app,
            &format!("/api/atcs/{city}/simpang-pci/command"),
        ))
        .json(&json!({ "action": "extend_green", "approach": "utara", "seconds": 10, "reason": "uji" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

/// Empty, oversized, malformed sign-ins; unknown users and wrong
/// passwords (the same answer after the same work); repeated failures
/// (429, growing); forged, revoked and expired sessions. Each gets its 4xx
/// with a message, and no password reaches an answer or the audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_bad_input_and_ended_sessions_with_a_clear_4xx() {
    let app = support::spawn(support::settings(None)).await;
    let secret = "sandi-yang-sangat-rahasia";
    let budi = support::sign_in(&app, "budi", &["operator"], &[], &[]).await;
    let login = |body: reqwest::Body, ctype: &'static str| {
        let url = support::http(&app, "/api/login");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, r.text().await.unwrap(), retry)
        }
    };
    let cases: Vec<(&str, reqwest::Body, u16)> = vec![
        ("empty", "".into(), 400),
        (
            "oversized",
            format!(
                "{{\"username\":\"budi\",\"password\":\"{}\"}}",
                "x".repeat(17 * 1024)
            )
            .into(),
            413,
        ),
        (
            "malformed",
            format!("{{\"username\":\"budi\",\"password\":\"{secret}").into(),
            400,
        ),
        ("not an object", format!("[\"{secret}\"]").into(), 400),
        (
            "unknown field",
            format!("{{\"username\":\"budi\",\"password\":\"{secret}\",\"role\":\"admin\"}}")
                .into(),
            400,
        ),
    ];
    for (case, body, want) in cases {
        let (status, text, _) = login(body, "application/json").await;
        assert_eq!(status, want, "{case}: {text}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{case}: JSON error: {text}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{case}: {text}"
        );
        assert!(
            !text.contains(secret),
            "{case}: the answer echoes the password: {text}"
        );
    }
    // Unknown user and wrong password: the same answer, after the same work.
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let (s1, b1, _) = login(
            json!({"username": format!("nobody-{i}"), "password": secret})
                .to_string()
                .into(),
            "application/json",
        )
        .await;
        unknown.push(t.elapsed());
        let t = Instant::now();
        let (s2, b2, _) = login(
            json!({"username": "budi", "password": format!("{secret}-{i}")})
                .to_string()
                .into(),
            "application/json",
        )
        .await;
        wrong.push(t.elapsed());
        assert_eq!(
            (s1, &b1),
            (s2, &b2),
            "unknown user and wrong password answer alike"
        );
        assert_eq!(s1, 401);
    }
    unknown.sort();
    wrong.sort();
    println!(
        "sign-in refusals, median: unknown user {:?}, wrong password {:?}",
        unknown[1], wrong[1]
    );
    // The unknown user pays for a password check too (without it: well under a millisecond).
    assert!(
        unknown[1] * 3 >= wrong[1],
        "unknown user {:?} vs wrong password {:?}",
        unknown[1],
        wrong[1]
    );
    // Two more failures for budi (five in all): the sixth attempt waits.
    for _ in 0..2 {
        login(
            json!({"username": "budi", "password": "salah-lagi-ya"})
                .to_string()
                .into(),
            "application/json",
        )
        .await;
    }
    let (status, text, retry) = login(
        json!({"username": "budi", "password": "salah-lagi-ya"})
            .to_string()
            .into(),
        "application/json",
    )
    .await;
    assert_eq!(status, 429, "{text}");
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));

    // Sessions: forged, revoked (after logout), expired.
    let me = |cookie: String| {
        let url = support::http(&app, "/api/logout");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = me(format!("kendali_session={}", "ab".repeat(32))).await;
    assert_eq!(status, 401, "forged: {text}");
    assert!(text.contains("session has ended"), "{text}");
    let (status, _) = me(budi.cookie.clone()).await;
    assert_eq!(status, 200, "budi signs out");
    let (status, text) = me(budi.cookie.clone()).await;
    assert_eq!(status, 401, "revoked: {text}");
    let expired = app
        .directory
        .open_session(
            Holder::User("budi".into()),
            "test",
            chrono::Duration::seconds(-1),
        )
        .await
        .unwrap();
    let (status, text) = me(format!("kendali_session={expired}")).await;
    assert_eq!(status, 401, "expired: {text}");

    // Audited, without a password anywhere.
    let admin = support::sign_in(&app, "admin-audit", &["admin"], &[], &[]).await;
    let audit: Value = admin.get_json(&app, "/api/admin/audit?limit=1000").await;
    let rows = audit["rows"].as_array().unwrap();
    let count = |action: &str, outcome: &str| {
        rows.iter()
            .filter(|r| r["action"] == action && r["outcome"] == outcome)
            .count()
    };
    assert!(count("login_failed", "refused") >= 6, "{audit}");
    assert!(count("login_failed", "throttled") >= 1, "{audit}");
    assert!(count("logout", "ok") >= 1);
    assert!(
        !audit.to_string().contains(secret),
        "the audit holds a password"
    );
    app.stop().await;
}

/// Requests for a host name the server does not hold are refused (a
/// DNS-rebinding page), state-changing requests from another origin are
/// refused, and every answer carries the security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_and_cross_site_requests_are_refused_and_pages_carry_security_headers() {
    let app = support::spawn(support::settings(None)).await;
    let client = reqwest::Client::new();
    let r = client
        .get(support::http(&app, "/api/state"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("server_names"));
    // The websocket, with a matching Origin (what a rebinding page sends).
    let mut req = support::ws_request(&app, "", None);
    req.headers_mut()
        .insert("host", "evil.example".parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!(
            "a foreign host must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    // A configured name is answered.
    let mut settings = support::settings(None);
    settings.http.server_names = vec!["kendali.kota.go.id".into()];
    let named = support::spawn(settings).await;
    let r = client
        .get(support::http(&named, "/healthz"))
        .header("host", "kendali.kota.go.id:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    named.stop().await;

    let officer = support::sign_in(&app, "budi-cs", &["supervisor"], &[], &[]).await;
    let r = officer
        .client
        .post(support::http(&app, "/api/logout"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("cross-site"));
    let r = officer
        .client
        .post(support::http(&app, "/api/logout"))
        .header("origin", format!("http://{}", app.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the server's own origin");

    for path in ["/", "/login", "/api/state", "/js/boot.js", "/no-such-route"] {
        let r = client.get(support::http(&app, path)).send().await.unwrap();
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("style-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    app.stop().await;
}

/// A display token opens a long-lived read-only session once (the token
/// leaves the address), shows no personal data, and ends when revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_token_opens_a_read_only_wall_until_it_is_revoked() {
    let mut settings = support::settings(None);
    settings.http.anonymous_wall_networks = Vec::new();
    let app = support::spawn(settings).await;
    let admin = support::sign_in(&app, "admin-disp", &["admin"], &[], &[]).await;
    let made: Value = admin
        .client
        .post(support::http(&app, "/api/admin/displays"))
        .json(&json!({ "name": "dinding-utama", "layout": "4k" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = made["token"].as_str().unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .get(support::http(&app, &format!("/?display={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/?layout=4k",
        "the token leaves the address"
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let me: Value = browser
        .get(support::http(&app, "/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["display"], true, "{me}");
    assert_eq!(me["username"], "display:dinding-utama");
    assert_eq!(me["may"]["personal_data"], false);
    assert_eq!(me["may"]["traffic"], false);
    let r = browser
        .get(support::http(&app, "/?display=not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Revoked: the session ends with the token.
    let r = admin
        .client
        .post(support::http(
            &app,
            "/api/admin/displays/dinding-utama/revoke",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = browser
        .get(support::http(&app, "/api/state"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

/// A traffic officer acts in their own district only, under their own name
/// (never the body's), and a burst of commands is cut off per user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_carry_the_officer_from_the_session_and_stop_at_the_district_and_the_rate() {
    let test = "commands_carry_the_officer_from_the_session_and_stop_at_the_district_and_the_rate";
    let Some(url) = support::mosquitto(test) else {
        return;
    };
    let mut settings = support::settings(Some(url.clone()));
    settings.auth.actions_burst = 3;
    settings.auth.actions_per_minute = 1;
    let app = support::spawn(settings).await;
    let city = support::city("scope");
    let _p = junction(&url, &city).await;
    support::entity(
        &app,
        "intersection",
        &format!("{city}/simpang-pci"),
        "the junction",
    )
    .await;
    let here = support::sign_in(
        &app,
        "petugas-cibeber",
        &["traffic_officer"],
        &[&city],
        &["Cibeber"],
    )
    .await;
    let there = support::sign_in(
        &app,
        "petugas-citangkil",
        &["traffic_officer"],
        &[&city],
        &["Citangkil"],
    )
    .await;
    let path = support::http(&app, &format!("/api/atcs/{city}/simpang-pci/command"));
    let body =
        json!({ "action": "extend_green", "approach": "utara", "seconds": 10, "reason": "uji" });
    let r = there.client.post(&path).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Cibeber"));
    let r = here.client.post(&path).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["command"]["issued_by"], "petugas-cibeber");
    let id = v["command"]["command_id"].as_str().unwrap().to_owned();
    let cmd = support::entity(&app, "command", &id, "the command back through ingest").await;
    assert_eq!(cmd["command"]["issued_by"], "petugas-cibeber", "{cmd}");
    for _ in 0..2 {
        let r = here.client.post(&path).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 202);
    }
    let r = here.client.post(&path).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    app.stop().await;
}

/// Users made with `kendali users add` sign in; the audit chain verifies;
/// Kendali's own database role cannot change an audit row; a row changed
/// in SQL behind its back makes `kendali audit verify` fail, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_verifies_and_names_a_row_changed_in_sql() {
    let test = "the_audit_chain_verifies_and_names_a_row_changed_in_sql";
    let Some(admin_url) = support::postgres(test).await else {
        return;
    };
    // Kendali's own role, not a superuser: it owns its tables, as in production.
    let role = format!(
        "kendali_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let db = format!("{role}_db");
    let su = support::pg(&admin_url).await;
    // A password, for servers that ask for one over TCP (Debian's default).
    su.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'kendali-test-role'"
    ))
    .await
    .unwrap();
    su.batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&support::pg_url(&db)).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("kendali-test-role")).unwrap();
    let url = url.to_string();

    let (code, out) = kendali(
        &[
            "users",
            "add",
            "siti",
            "--role",
            "supervisor",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        Some("sandi-siti-panjang\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = kendali(
        &[
            "users",
            "add",
            "x",
            "--role",
            "boss",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        Some("sandi-siti-panjang\n"),
    )
    .await;
    assert_ne!(code, 0);
    assert!(out.contains("unknown role"), "{out}");
    let (code, out) = kendali(
        &[
            "displays",
            "add",
            "dinding-1",
            "--layout",
            "4k",
            "--database-url",
            &url,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/?display="), "{out}");

    let mut settings = support::settings(None);
    settings.database.url = Some(url.clone());
    let app = support::spawn(settings).await;
    let client = reqwest::Client::new();
    for password in ["salah-sekali-ya", "sandi-siti-panjang"] {
        client
            .post(support::http(&app, "/api/login"))
            .json(&json!({ "username": "siti", "password": password }))
            .send()
            .await
            .unwrap();
    }
    let rows = support::pg(&support::pg_url(&db))
        .await
        .query("SELECT id, action, outcome FROM audit ORDER BY id", &[])
        .await
        .unwrap();
    let actions: Vec<(String, String)> = rows.iter().map(|r| (r.get(1), r.get(2))).collect();
    assert_eq!(
        actions,
        vec![
            ("user_added".into(), "ok".into()),
            ("display_added".into(), "ok".into()),
            ("login_failed".into(), "refused".into()),
            ("login".into(), "ok".into()),
        ],
        "who did what, in order"
    );
    app.stop().await;

    let (code, out) = kendali(&["audit", "verify", "--database-url", &url], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 rows"), "{out}");

    // Kendali's role may not change a row.
    let own = support::pg(&url).await;
    let e = own
        .execute("UPDATE audit SET outcome = 'ok' WHERE id = 3", &[])
        .await
        .expect_err("Kendali's role cannot update the audit");
    println!("Kendali's role updating the audit: {e:?}");
    assert!(own.execute("DELETE FROM audit", &[]).await.is_err());
    // A superuser changes one, around the trigger: the chain names it.
    let dbsu = support::pg(&support::pg_url(&db)).await;
    dbsu.batch_execute(
        "ALTER TABLE audit DISABLE TRIGGER audit_no_change; \
         UPDATE audit SET outcome = 'ok' WHERE id = 3; \
         ALTER TABLE audit ENABLE TRIGGER audit_no_change",
    )
    .await
    .unwrap();
    let (code, out) = kendali(&["audit", "verify", "--database-url", &url], None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit row 3"), "{out}");
    drop((own, dbsu));
    su.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    su.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

/// HTTPS on the web server itself (`http.tls_cert`, `http.tls_key`): the
/// room answers over TLS, says so for a year (HSTS), and its session
/// cookie is `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_server_speaks_https_with_secure_cookies() {
    let test = "the_web_server_speaks_https_with_secure_cookies";
    let tools = ["/usr/bin/openssl", "/usr/bin/curl"];
    if let Some(missing) = tools.iter().find(|t| !std::path::Path::new(t).exists()) {
        let msg = format!("{test} needs {missing} (apt-get install openssl curl)");
        if support::under_ci() {
            panic!("{msg} (CI=true)");
        }
        eprintln!("\n*** SKIPPED {msg}\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut settings = support::settings(None);
    settings.http.tls_cert = Some(cert.clone());
    settings.http.tls_key = Some(key);
    let app = kendali::app::Application::build(settings)
        .await
        .expect("kendali starts with TLS")
        .spawn();
    app.directory
        .add_user(kendali::identity::directory::User {
            username: "siti".into(),
            roles: vec![kendali::identity::Role::Supervisor],
            cities: Vec::new(),
            districts: Vec::new(),
            disabled: false,
            created: chrono::Utc::now(),
            password_hash: kendali::identity::password::hash("sandi-siti-panjang").unwrap(),
        })
        .await
        .unwrap();
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-i", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = format!("https://{}", app.http_addr);
    let health = curl(&[&format!("{base}/healthz")]);
    assert!(health.starts_with("HTTP/"), "{health}");
    assert!(health.contains(" 200"), "{health}");
    assert!(
        health
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{health}"
    );
    let login = curl(&[
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"username":"siti","password":"sandi-siti-panjang"}"#,
        &format!("{base}/api/login"),
    ]);
    let cookie = login
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: kendali_session=")
        })
        .unwrap_or_else(|| panic!("a session cookie: {login}"));
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP on the same port is not answered as HTTP.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}/healthz", app.http_addr))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    app.stop().await;
}

/// An open websocket ends with its session: a dispatcher disabled by an
/// admin has their socket closed (1008) at the next check, and cannot open
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_open_websocket_is_closed() {
    let mut settings = support::settings(None);
    settings.auth.session_recheck_s = 1;
    let app = support::spawn(settings).await;
    let dispatcher = support::sign_in(&app, "dispatcher-x", &["dispatcher"], &[], &[]).await;
    let admin = support::sign_in(&app, "admin-x", &["admin"], &[], &[]).await;
    let mut screen = Screen::connect_as(&app, "families=calls", Some(&dispatcher.cookie)).await;
    screen
        .until(10, "the snapshot", |s| !s.frames.is_empty())
        .await;
    let r = admin
        .client
        .post(support::http(&app, "/api/admin/users/dispatcher-x"))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let closed = loop {
        match screen.next_message(Duration::from_secs(5)).await {
            Some(tokio_tungstenite::tungstenite::Message::Close(c)) => break c,
            Some(_) => continue,
            None => panic!("the socket must close with a reason"),
        }
    };
    let c = closed.expect("a close frame with a code");
    assert_eq!(u16::from(c.code), 1008, "{c:?}");
    println!("closed {:?} after the user was disabled", started.elapsed());
    match tokio_tungstenite::connect_async(support::ws_request(&app, "", Some(&dispatcher.cookie)))
        .await
    {
        // The loopback wall admits the anonymous: the ended session is not
        // taken for it, it is refused.
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!(
            "an ended session must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    app.stop().await;
}

/// Behind a reverse proxy listed in `http.trusted_proxies`, the client's
/// address comes from `X-Forwarded-For` (for the anonymous wall's networks,
/// the throttles and the audit), its host from `X-Forwarded-Host` and its
/// scheme from `X-Forwarded-Proto`; from anyone else those headers count
/// for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let mut settings = support::settings(None);
    settings.http.anonymous_wall_networks = vec!["10.9.0.0/16".into()];
    settings.http.trusted_proxies = vec!["127.0.0.1/32".into()];
    let app = support::spawn(settings).await;
    let get = |xff: &'static str, host: Option<&'static str>| {
        let url = support::http(&app, "/api/me");
        async move {
            let mut r = reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", xff);
            if let Some(h) = host {
                r = r.header("x-forwarded-host", h);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        get("10.9.1.2", None).await,
        200,
        "a wall PC on the room's network"
    );
    assert_eq!(get("8.8.8.8", None).await, 401, "anyone else signs in");
    assert_eq!(
        get("8.8.8.8, 10.9.1.2", None).await,
        200,
        "the nearest address the proxy saw"
    );
    assert_eq!(
        get("10.9.1.2", Some("evil.example")).await,
        400,
        "the forwarded host is checked"
    );
    // Secure cookies when the proxy says the client used HTTPS.
    support::sign_in(&app, "siti-proxy", &["supervisor"], &[], &[]).await;
    let r = reqwest::Client::new()
        .post(support::http(&app, "/api/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "username": "siti-proxy", "password": "siti-proxy-sandi-rahasia" }))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    app.stop().await;

    // Not a trusted proxy: the headers are ignored (127.0.0.1 is not on the wall's network).
    let mut settings = support::settings(None);
    settings.http.anonymous_wall_networks = vec!["10.9.0.0/16".into()];
    let app = support::spawn(settings).await;
    let r = reqwest::Client::new()
        .get(support::http(&app, "/api/me"))
        .header("x-forwarded-for", "10.9.1.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}
