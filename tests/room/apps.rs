//! Service applications without an MQTT client: tokens made with `kendali
//! apps add`, events and KPI samples over HTTP that reach the wall (its
//! websocket and `/api/state`) and the database through the bus, retries
//! that count once, another application's token refused, bad bodies
//! refused with their dead-letter reason, and revocation; and the OpenAPI
//! document integrators read first.

use serde_json::{json, Value};

use crate::support::{self, kendali, Screen};

/// The token `kendali apps add` printed (the line that holds it).
fn token_in(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.starts_with("kdl_app_") && w.len() > 40)
        .unwrap_or_else(|| panic!("no token in {out}"))
        .trim_end_matches('`')
        .to_owned()
}

async fn add(db: &str, city: &str, service: &str) -> String {
    let (code, out) = kendali(
        &["apps", "add", service, "--city", city, "--database-url", db],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    token_in(&out)
}

async fn revoke(db: &str, city: &str, service: &str) -> (i32, String) {
    kendali(
        &[
            "apps",
            "revoke",
            service,
            "--city",
            city,
            "--database-url",
            db,
        ],
        None,
    )
    .await
}

fn event(service: &str, kind: &str) -> (String, Value) {
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "event_id": id,
        "ts": support::now_wib(),
        "service": service,
        "type": kind,
        "ref": "IZN-2026-0001",
        "opd": "dpmptsp",
    });
    (id, body)
}

async fn post(
    app: &kendali::app::RunningApp,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(support::http(app, path))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("the server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_publishes_over_http_with_its_token_and_no_other() {
    let test = "an_application_publishes_over_http_with_its_token_and_no_other";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let city = support::city("apps");
    // Tokens are made before the server runs, from the command line.
    let permits = add(&db, &city, "perizinan").await;
    let complaints = add(&db, &city, "pengaduan").await;
    let mut settings = support::settings(None);
    settings.database.url = Some(db.clone());
    let app = support::spawn(settings).await;
    let mut wall = Screen::connect(&app, &format!("cities={city}&families=apps")).await;
    wall.step(std::time::Duration::from_secs(5))
        .await
        .expect("the snapshot");

    // An event, accepted, on the wall and in the database.
    let path = format!("/api/ingest/{city}/apps/perizinan/events");
    let (id, body) = event("perizinan", "permit.submitted");
    let (status, answer) = post(&app, &path, Some(&permits), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["event_id"], id.as_str());
    assert_eq!(
        answer["topic"],
        format!("city/{city}/apps/perizinan/events")
    );
    wall.until(10, "the app event on the wall's websocket", |s| {
        s.events
            .iter()
            .any(|(_, kind, v)| kind == "app_event" && v["event_id"] == id.as_str())
    })
    .await;
    let pg = support::pg(&db).await;
    let stored = support::eventually(10, "the app event in the database", || {
        let (pg, id) = (&pg, id.clone());
        async move {
            let r = pg
                .query_opt(
                    "SELECT service, type, ref, opd FROM app_events WHERE event_id = $1::text::uuid",
                    &[&id],
                )
                .await
                .ok()??;
            Some((
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, Option<String>>(2),
                r.get::<_, Option<String>>(3),
            ))
        }
    })
    .await;
    assert_eq!(
        stored,
        (
            "perizinan".into(),
            "permit.submitted".into(),
            Some("IZN-2026-0001".into()),
            Some("dpmptsp".into())
        )
    );

    // A retry of the same event (a timeout on the application's side) counts once.
    let (status, _) = post(&app, &path, Some(&permits), &body).await;
    assert_eq!(status, 202);
    let (_, second) = event("perizinan", "permit.submitted");
    assert_eq!(post(&app, &path, Some(&permits), &second).await.0, 202);
    support::eventually(10, "two permits counted, the retry not", || {
        let (app, city) = (&app, city.clone());
        async move {
            let s = support::get_json(app, "/api/state").await;
            (s["entities"]["counters"][&city]["app_events"]["perizinan"]["permit.submitted"] == 2)
                .then_some(())
        }
    })
    .await;
    // The store writes what the state has taken: two rows, once flushed.
    support::eventually(10, "two rows stored, the retry not", || {
        let (pg, city) = (&pg, city.clone());
        async move {
            let n: i64 = pg
                .query_one("SELECT count(*) FROM app_events WHERE city = $1", &[&city])
                .await
                .ok()?
                .get(0);
            assert!(n <= 2, "the retry stored twice");
            (n == 2).then_some(())
        }
    })
    .await;

    // A KPI sample.
    let kpi = json!({
        "ts": support::now_wib(),
        "metric": "permits_on_time_pct",
        "value": 92.5,
        "unit": "%",
        "target": 90,
    });
    let kpi_path = format!("/api/ingest/{city}/kpi/perizinan");
    let (status, answer) = post(&app, &kpi_path, Some(&permits), &kpi).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["metric"], "permits_on_time_pct");
    let key = format!("{city}/perizinan/permits_on_time_pct");
    let v = support::eventually(10, "the KPI in the live state", || {
        let (app, key) = (&app, key.clone());
        async move {
            let s = support::get_json(app, "/api/state").await;
            s["entities"]["kpi"].get(&key).cloned()
        }
    })
    .await;
    assert_eq!(v["value"], 92.5);

    // Another application's token, no token, an unknown token.
    let (_, other) = event("perizinan", "permit.submitted");
    let (status, answer) = post(&app, &path, Some(&complaints), &other).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("pengaduan"),
        "{answer}"
    );
    let (status, answer) = post(&app, &kpi_path, Some(&complaints), &kpi).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = post(&app, &path, None, &other).await;
    assert_eq!(status, 401, "{answer}");
    let forged = format!("kdl_app_{}", "0".repeat(64));
    let (status, answer) = post(&app, &path, Some(&forged), &other).await;
    assert_eq!(status, 401, "{answer}");
    // Another city's path with the right service: refused too.
    let elsewhere = "/api/ingest/kota-lain/apps/perizinan/events";
    assert_eq!(post(&app, elsewhere, Some(&permits), &other).await.0, 403);

    // Bad bodies: the dead-letter reason, and the dead-letter keeps them.
    let mut missing = event("perizinan", "permit.submitted").1;
    missing.as_object_mut().unwrap().remove("type");
    let (status, answer) = post(&app, &path, Some(&permits), &missing).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("missing_field")),
        "{answer}"
    );
    let (_, mut mismatch) = event("pengaduan", "complaint.filed");
    mismatch["service"] = json!("pengaduan");
    let (status, answer) = post(&app, &path, Some(&permits), &mismatch).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("topic_mismatch")),
        "{answer}"
    );
    let big = json!({ "event_id": uuid::Uuid::new_v4(), "pad": "x".repeat(70 * 1024) });
    let (status, answer) = post(&app, &path, Some(&permits), &big).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (413, Some("payload_too_large")),
        "{answer}"
    );
    let dead = support::get_json_as_supervisor(&app, "/api/deadletter?reason=missing_field").await;
    let entry = dead["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["topic"] == format!("city/{city}/apps/perizinan/events"))
        .cloned()
        .unwrap_or_else(|| panic!("the refused body in the dead-letter: {dead}"));
    assert!(
        entry["detail"].as_str().unwrap().contains("over HTTP"),
        "{entry}"
    );
    // Nothing refused reached the state.
    let s = support::get_json(&app, "/api/state").await;
    assert_eq!(
        s["entities"]["counters"][&city]["app_events"]["perizinan"]["permit.submitted"],
        2
    );
    assert!(s["entities"]["counters"][&city]["app_events"]
        .get("pengaduan")
        .is_none());

    // Revoked: refused at once; listed as revoked; both audited.
    let (code, out) = revoke(&db, &city, "perizinan").await;
    assert_eq!(code, 0, "{out}");
    let (status, answer) = post(&app, &path, Some(&permits), &other).await;
    assert_eq!(status, 401, "{answer}");
    let (code, out) = kendali(
        &["apps", "list", "--city", &city, "--database-url", &db],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let states: Vec<(&str, &str)> = out
        .lines()
        .filter(|l| l.contains(city.as_str()))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[2], w[4])
        })
        .collect();
    assert_eq!(
        states,
        vec![("pengaduan", "active"), ("perizinan", "revoked")],
        "{out}"
    );
    assert!(!out.contains(&permits), "a list never shows a token");
    let audited: Vec<String> = pg
        .query(
            "SELECT action FROM audit WHERE entity LIKE 'app:%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        audited,
        vec!["app_token_added", "app_token_added", "app_token_revoked"]
    );
    let (code, out) = revoke(&db, &city, "perizinan").await;
    assert_ne!(code, 0, "nothing left to revoke: {out}");
    assert!(out.contains("no valid token"), "{out}");
    app.stop().await;
}

/// One application cannot flood the bus: past `ingest.http_burst` its
/// token gets 429 with `Retry-After`, counted in `/metrics`, while another
/// application's token is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_past_its_rate_gets_429_and_the_others_are_still_taken() {
    let test = "an_application_past_its_rate_gets_429_and_the_others_are_still_taken";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let city = support::city("flood");
    let noisy = add(&db, &city, "perizinan").await;
    let quiet = add(&db, &city, "pengaduan").await;
    let mut settings = support::settings(None);
    settings.database.url = Some(db.clone());
    settings.ingest.http_per_minute = 6;
    settings.ingest.http_burst = 3;
    let app = support::spawn(settings).await;
    let path = format!("/api/ingest/{city}/apps/perizinan/events");
    for _ in 0..3 {
        let (status, answer) = post(
            &app,
            &path,
            Some(&noisy),
            &event("perizinan", "permit.submitted").1,
        )
        .await;
        assert_eq!(status, 202, "{answer}");
    }
    let r = reqwest::Client::new()
        .post(support::http(&app, &path))
        .bearer_auth(&noisy)
        .json(&event("perizinan", "permit.submitted").1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=10).contains(&wait),
        "Retry-After {wait} s at 6 a minute"
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ingest.http_per_minute"),
        "{body}"
    );
    let other = format!("/api/ingest/{city}/apps/pengaduan/events");
    let (status, answer) = post(
        &app,
        &other,
        Some(&quiet),
        &event("pengaduan", "complaint.filed").1,
    )
    .await;
    assert_eq!(status, 202, "another application is still taken: {answer}");
    let m = support::metrics(&app).await;
    assert_eq!(
        support::metric(&m, "kendali_http_ingest_throttled_total"),
        1.0
    );
    app.stop().await;
}

/// `/api/openapi.json`, what integrators read first: every route the web
/// modules declare is in it with its method (the static assets aside), and
/// the service applications' routes name their token and the contract's
/// schema of their body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_route() {
    let app = support::spawn(support::settings(None)).await;
    let r = reqwest::get(support::http(&app, "/api/openapi.json"))
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.expect("JSON");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut missing = Vec::new();
    for (method, path) in support::declared_routes() {
        if path.starts_with("/{path") {
            continue;
        }
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        if !op.is_object() || op["summary"].as_str().unwrap_or("").is_empty() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    let ingest = &doc["paths"]["/api/ingest/{city}/apps/{service}/events"]["post"];
    assert_eq!(ingest["security"][0]["app_token"], json!([]), "{ingest}");
    assert_eq!(
        ingest["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "/api/contract/schemas/app_event"
    );
    let params: Vec<&str> = ingest["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["city", "service"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["name"],
        "kendali_session"
    );
    // A route for the people is secured by the session; a public one by nothing.
    let command = &doc["paths"]["/api/atcs/{city}/{intersection}/command"]["post"];
    assert_eq!(command["security"][0]["session"], json!([]), "{command}");
    assert!(doc["paths"]["/healthz"]["get"]["security"].is_null());
    app.stop().await;
}
