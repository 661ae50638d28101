//! The contract and the edges of a node, end to end: every message kind
//! published through a real broker comes out of Kendali with its fields as
//! sent; the committed JSON Schemas match the Rust types; `kendali publish`
//! refuses and sends; a taken port and a bad runtime setting stop the start
//! with a message; ingest over TLS with credentials; the command endpoint's
//! every outcome; a request sent a byte at a time is cut off.

use std::time::Duration;

use futures_util::StreamExt;
use kendali::contract::{self, schema, Message, MessageKind, Topic};
use serde_json::Value;
use tokio_tungstenite::tungstenite;

use crate::support::{self, Publisher};

/// Every example message of the contract, moved to `city`, stamped `ts`.
fn examples(city: &str) -> Vec<(Topic, Message)> {
    let ts = chrono::Utc::now().with_timezone(&kendali::domain::wib());
    MessageKind::ALL
        .into_iter()
        .map(|k| {
            let (topic, msg) = contract::messages::example(k, ts);
            let topic = Topic::parse(&topic.to_string().replacen("cilegon", city, 1))
                .expect("example topic");
            (topic, msg)
        })
        .collect()
}

/// Reads websocket frames until `done` says every expected update arrived.
async fn collect_updates(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    secs: u64,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(&seen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("updates arrive in time")
            .expect("socket open")
            .expect("frame");
        if let tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("server frames are JSON");
            for key in ["updates", "events"] {
                if let Some(list) = v.get(key).and_then(Value::as_array) {
                    seen.extend(list.iter().cloned());
                }
            }
        }
    }
    seen
}

async fn round_trip(app: &kendali::app::RunningApp) {
    let mqtt_url = app.mqtt_url.clone();
    let city = support::city("rt");
    // A supervisor's screen: call events come out whole, caller and note included.
    let supervisor = support::sign_in(app, "supervisor-rt", &["supervisor"], &[], &[]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(support::ws_request(
        app,
        &format!("cities={city}"),
        Some(&supervisor.cookie),
    ))
    .await
    .expect("ws connects");
    let publisher = Publisher::connect(&mqtt_url).await;
    let sent = examples(&city);
    for (topic, msg) in &sent {
        publisher.send(&topic.to_string(), 1, msg.to_json()).await;
        // Command before its ack: keep the lifecycle order of the example.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let updates = collect_updates(&mut ws, 10, |seen| {
        let kinds: std::collections::HashSet<&str> =
            seen.iter().filter_map(|u| u["kind"].as_str()).collect();
        let cmd_done = seen.iter().any(|u| {
            u["kind"] == "command"
                && u["value"]["status"] == "applied"
                && !u["value"]["command"].is_null()
        });
        let int_done = seen.iter().any(|u| {
            u["kind"] == "intersection"
                && !u["value"]["info"].is_null()
                && !u["value"]["state"].is_null()
        });
        let unit_done = seen
            .iter()
            .any(|u| u["kind"] == "unit" && !u["value"]["assignment"].is_null());
        ["call_event", "app_event", "unit", "kpi", "alert"]
            .iter()
            .all(|k| kinds.contains(k))
            && cmd_done
            && int_done
            && unit_done
    })
    .await;
    let last = |kind: &str| {
        updates
            .iter()
            .rev()
            .find(|u| u["kind"] == kind)
            .cloned()
            .expect("kind present")
    };
    for (_, msg) in &sent {
        let sent_json: Value = serde_json::from_slice(&msg.to_json()).expect("JSON");
        let got: Value = match msg {
            Message::IntersectionInfo(_) => last("intersection")["value"]["info"].clone(),
            Message::IntersectionState(_) => last("intersection")["value"]["state"].clone(),
            Message::Command(_) => last("command")["value"]["command"].clone(),
            Message::CommandAck(m) => {
                let v = last("command")["value"].clone();
                assert_eq!(v["status"], "applied");
                assert_eq!(
                    v["ack_ts"],
                    serde_json::to_value(
                        m.ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
                    )
                    .unwrap()
                );
                continue;
            }
            Message::CallEvent(_) => last("call_event")["value"].clone(),
            Message::AppEvent(_) => last("app_event")["value"].clone(),
            Message::UnitStatus(_) => {
                let mut v = last("unit")["value"].clone();
                let o = v.as_object_mut().unwrap();
                for k in ["city", "rx", "assignment"] {
                    o.remove(k);
                }
                v
            }
            // The unit carries its latest order, whole for a supervisor.
            Message::UnitAssignment(_) => last("unit")["value"]["assignment"].clone(),
            Message::Alert(_) => {
                let mut v = last("alert")["value"].clone();
                v.as_object_mut().unwrap().remove("city");
                v
            }
            Message::KpiSample(_) => {
                let mut v = last("kpi")["value"].clone();
                let o = v.as_object_mut().unwrap();
                for k in ["city", "service", "rx"] {
                    o.remove(k);
                }
                v
            }
        };
        assert_eq!(got, sent_json, "{:?} comes out as sent", msg.kind());
    }
    // `ts` keeps its offset and its microseconds.
    let ts = last("call_event")["value"]["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ts.ends_with("+07:00") && ts.contains('.'),
        "ts as sent: {ts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_message_round_trips_through_mosquitto() {
    let Some(url) = support::mosquitto("every_contract_message_round_trips_through_mosquitto")
    else {
        return;
    };
    let app = support::spawn(support::settings(Some(url))).await;
    round_trip(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_message_round_trips_through_the_embedded_broker() {
    // No broker URL: the node starts its embedded broker (on a free port here).
    let settings = support::settings(None);
    let expected = format!("mqtt://{}", settings.mqtt.broker_addr);
    let app = support::spawn(settings).await;
    assert_eq!(app.mqtt_url, expected);
    round_trip(&app).await;
    app.stop().await;
}

#[test]
fn committed_schemas_match_the_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for kind in MessageKind::ALL {
        let path = schema::schema_file(root, kind);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            committed,
            schema::schema_text(kind),
            "{} drifted from the Rust types: run `cargo run -- schemas --write .` and commit",
            path.display()
        );
    }
}

#[test]
fn kendali_publish_refuses_an_invalid_message_with_a_clear_error() {
    let bin = env!("CARGO_BIN_EXE_kendali");
    let out = std::process::Command::new(bin)
        .args(["publish", "city/cilegon/units/amb-01/status", r#"{"ts":"2026-11-22T08:00:00+07:00","unit":"amb-01","agency":"dinkes","status":"flying"}"#, "--mqtt-url", "mqtt://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused: unknown_enum") && err.contains("flying"),
        "stderr: {err}"
    );
    let out = std::process::Command::new(bin)
        .args([
            "publish",
            "city/cilegon/calls/113",
            "{}",
            "--mqtt-url",
            "mqtt://127.0.0.1:1",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused: unknown_topic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kendali_publish_sends_a_valid_message_that_ingest_accepts() {
    let Some(url) = support::mosquitto("kendali_publish_sends_a_valid_message_that_ingest_accepts")
    else {
        return;
    };
    let app = support::spawn(support::settings(Some(url.clone()))).await;
    let city = support::city("pub");
    let payload = format!(
        r#"{{"ts":"{}","metric":"queue_len","value":12,"unit":"count","target":10}}"#,
        support::now_wib()
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kendali"))
        .args([
            "publish",
            &format!("city/{city}/kpi/epuskesmas"),
            &payload,
            "--mqtt-url",
            &url,
        ])
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = format!("{city}/epuskesmas/queue_len");
    let v = support::eventually(10, "the KPI in the live state", || {
        let app = &app;
        let key = key.clone();
        async move {
            let s = support::get_json(app, "/api/state").await;
            s["entities"]["kpi"].get(&key).cloned()
        }
    })
    .await;
    assert_eq!(v["value"], 12.0);
    assert_eq!(v["target"], 10.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_stops_the_start_with_a_message_naming_the_option() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut s = support::settings(None);
    s.mqtt.broker_addr = addr;
    let err = kendali::app::Application::build(s)
        .await
        .err()
        .expect("the embedded broker's port is taken")
        .to_string();
    assert!(
        err.contains(&addr.to_string())
            && err.contains("--broker-addr")
            && err.contains("--mqtt-url"),
        "{err}"
    );
    let Some(url) =
        support::mosquitto("a_taken_port_stops_the_start_with_a_message_naming_the_option")
    else {
        return;
    };
    let mut s = support::settings(Some(url));
    s.http.addr = addr;
    let err = kendali::app::Application::build(s)
        .await
        .err()
        .expect("the web port is taken")
        .to_string();
    assert!(
        err.contains(&addr.to_string())
            && err.contains("--http")
            && err.contains("KENDALI_HTTP_ADDR"),
        "{err}"
    );
}

/// `runtime.worker_threads` sizes the served binary's runtime: one worker by
/// default, what the setting says otherwise (shown on `/metrics`); a value
/// out of range stops the start with a message naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_runtime_has_the_configured_worker_threads() {
    let test = "the_served_runtime_has_the_configured_worker_threads";
    let Some(url) = support::mosquitto(test) else {
        return;
    };
    // A served binary, killed when dropped (also when an assertion fails).
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let bin = env!("CARGO_BIN_EXE_kendali");
    for (setting, expected) in [(None, 1), (Some("3"), 3)] {
        let http = support::free_addr();
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "serve",
            "--no-sim",
            "--mqtt-url",
            &url,
            "--http",
            &http.to_string(),
        ])
        .env(
            "KENDALI__MQTT__CLIENT_ID",
            format!(
                "kendali-rt-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        )
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null());
        if let Some(v) = setting {
            cmd.env("KENDALI__RUNTIME__WORKER_THREADS", v);
        }
        let child = Reap(cmd.spawn().expect("start kendali"));
        let metrics = support::eventually(30, "kendali ready", || async move {
            reqwest::get(format!("http://{http}/readyz"))
                .await
                .ok()
                .filter(|r| r.status().is_success())?;
            reqwest::get(format!("http://{http}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        })
        .await;
        drop(child);
        let line = metrics
            .lines()
            .find(|l| l.starts_with("kendali_runtime_workers "))
            .unwrap_or_else(|| panic!("no kendali_runtime_workers in:\n{metrics}"));
        assert_eq!(
            line,
            format!("kendali_runtime_workers {expected}"),
            "worker threads with the setting {setting:?}"
        );
    }
    // Bounded: were the value accepted, the server would run on.
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(bin)
            .args(["serve", "--no-sim", "--mqtt-url", &url, "--http"])
            .arg(support::free_addr().to_string())
            .env("KENDALI__RUNTIME__WORKER_THREADS", "1000")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("an out-of-range worker count stops the start")
    .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runtime.worker_threads must be 0..=256"),
        "stderr: {err}"
    );
}

/// Runs a command, panicking with its stderr if it fails.
fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA certificate and key made with openssl.
fn self_signed_ca(name: &str, key: &str, pem: &str) {
    run(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key,
        "-out",
        pem,
    ]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_connects_over_tls_with_credentials() {
    let test = "ingest_connects_over_tls_with_credentials";
    let tools = ["/usr/bin/openssl", "/usr/bin/mosquitto_passwd"];
    if tools.iter().any(|t| !std::path::Path::new(t).exists())
        || support::PrivateMosquitto::start(test).is_none()
    {
        assert!(
            !support::under_ci(),
            "{test} needs openssl and mosquitto_passwd under CI=true"
        );
        eprintln!("\n*** SKIPPED {test}: needs openssl and mosquitto (apt-get install openssl mosquitto)\n");
        return;
    }
    // A CA, a server certificate for 127.0.0.1, a password file.
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    self_signed_ca("kendali-test-ca", &p("ca.key"), &p("ca.pem"));
    run(std::process::Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]));
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(std::process::Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("server.pem"),
    ]));
    run(std::process::Command::new("mosquitto_passwd").args([
        "-c",
        "-b",
        &p("passwd"),
        "kendali",
        "rahasia-ruang",
    ]));
    let addr = support::free_addr();
    std::fs::write(
        p("mosquitto.conf"),
        format!(
            "listener {} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous false\npassword_file {}\nuser root\n",
            addr.port(),
            p("ca.pem"),
            p("server.pem"),
            p("server.key"),
            p("passwd")
        ),
    )
    .unwrap();
    let mut broker = std::process::Command::new("mosquitto")
        .args(["-c", &p("mosquitto.conf")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut s = support::settings(Some(format!(
        "mqtts://kendali:rahasia-ruang@127.0.0.1:{}",
        addr.port()
    )));
    s.mqtt.tls_ca = Some(dir.path().join("ca.pem"));
    let (url, mqtt) = (s.mqtt.url.clone().unwrap(), s.mqtt.clone());
    let app = support::spawn(s).await;
    let ready = support::get_json(&app, "/readyz").await;
    assert_eq!(ready["broker"], "connected", "{ready}");
    assert_eq!(ready["subscribed"], true, "{ready}");
    // A controller announces j1 over TLS (commands go only to known junctions).
    let (topic, info) = kendali::contract::example(
        kendali::contract::MessageKind::IntersectionInfo,
        chrono::Utc::now().with_timezone(&kendali::domain::wib()),
    );
    let info = info.to_json();
    let topic = topic
        .to_string()
        .replace("cilegon", "tls-city")
        .replace("simpang-pci", "j1");
    let info = String::from_utf8(info)
        .unwrap()
        .replace("simpang-pci", "j1");
    support::publish_once(&url, &mqtt, &topic, info.into_bytes()).await;
    support::entity(&app, "intersection", "tls-city/j1", "j1 known").await;
    // The command endpoint publishes over the same TLS connection, and ingest reads it back.
    let officer = support::sign_in(&app, "petugas", &["traffic_officer"], &[], &[]).await;
    let r = officer
        .client
        .post(support::http(&app, "/api/atcs/tls-city/j1/command"))
        .json(&serde_json::json!({"action": "set_mode", "mode": "manual", "reason": "uji"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["command"]["command_id"]
        .as_str()
        .unwrap()
        .to_owned();
    support::entity(
        &app,
        "command",
        &id,
        "the command back through the TLS broker",
    )
    .await;
    app.stop().await;
    // A wrong password, and a CA that did not sign the broker's certificate:
    // each is refused, and readiness says why (it is 503 before any attempt
    // too: the reason is what shows the attempt was made and refused).
    self_signed_ca("another-ca", &p("other.key"), &p("other.pem"));
    for (case, url, ca, says) in [
        (
            "wrong password",
            format!("mqtts://kendali:salah@127.0.0.1:{}", addr.port()),
            "ca.pem",
            "Connection refused, return code: `NotAuthorized`",
        ),
        (
            "unknown CA",
            format!("mqtts://kendali:rahasia-ruang@127.0.0.1:{}", addr.port()),
            "other.pem",
            "UnknownIssuer",
        ),
    ] {
        let mut s = support::settings(Some(url));
        s.mqtt.tls_ca = Some(dir.path().join(ca));
        let app = kendali::app::Application::build(s)
            .await
            .expect("starts; the broker refuses later")
            .spawn();
        let ready = support::eventually(10, case, || {
            let app = &app;
            async move {
                let r = reqwest::get(format!("http://{}/readyz", app.http_addr))
                    .await
                    .ok()?;
                let status = r.status();
                let body: Value = r.json().await.ok()?;
                body["broker_error"].is_string().then_some((status, body))
            }
        })
        .await;
        assert_eq!(ready.0, 503, "{case}");
        let error = ready.1["broker_error"].as_str().unwrap();
        assert!(error.contains(says), "{case}: {error}");
        app.stop().await;
    }
    let _ = broker.kill();
    let _ = broker.wait();
}

/// `POST /api/atcs/{city}/{intersection}/command`, every outcome CONTRACT.md
/// lists: 202 and the command back through ingest; 400 for each kind of bad
/// request; 404 for a junction or city Kendali has never heard of (it used
/// to publish those to nobody); 503 while the broker is down (it used to
/// queue the command and answer 202).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_endpoint_answers_each_outcome_with_its_status_and_a_message() {
    let test = "the_command_endpoint_answers_each_outcome_with_its_status_and_a_message";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let app = support::spawn(support::settings(Some(mosquitto.url.clone()))).await;
    let city = support::city("cmd");
    let p = Publisher::connect(&mosquitto.url).await;
    let (_, info) = contract::messages::example(
        MessageKind::IntersectionInfo,
        chrono::Utc::now().with_timezone(&kendali::domain::wib()),
    );
    p.send(
        &format!("city/{city}/atcs/simpang-pci/info"),
        1,
        info.to_json(),
    )
    .await;
    let key = format!("{city}/simpang-pci");
    support::entity(&app, "intersection", &key, "the junction known").await;
    let client = support::sign_in(&app, "petugas", &["traffic_officer"], &[], &[])
        .await
        .client;
    let post = |path: String, body: Value| {
        let client = client.clone();
        let url = support::http(&app, &path);
        async move {
            let r = client.post(url).json(&body).send().await.expect("POST");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("a JSON body"))
        }
    };
    let here = format!("/api/atcs/{city}/simpang-pci/command");
    let extend = serde_json::json!({"action": "extend_green", "approach": "utara", "seconds": 15, "reason": "uji"});
    for (case, path, body, status, says) in [
        (
            "seconds out of range",
            here.clone(),
            serde_json::json!({"action": "extend_green", "approach": "utara", "seconds": 500, "reason": "uji"}),
            400,
            "seconds",
        ),
        (
            "unknown field",
            here.clone(),
            serde_json::json!({"action": "set_mode", "mode": "manual", "reason": "uji", "force": true}),
            400,
            "force",
        ),
        (
            "missing approach",
            here.clone(),
            serde_json::json!({"action": "extend_green", "seconds": 15, "reason": "uji"}),
            400,
            "approach",
        ),
        (
            "issued_by in the body (it comes from the session)",
            here.clone(),
            serde_json::json!({"action": "set_mode", "mode": "manual", "reason": "uji", "issued_by": "someone-else"}),
            400,
            "session",
        ),
        (
            "bad path",
            format!("/api/atcs/{city}/simpang%20pci/command"),
            extend.clone(),
            400,
            "simpang pci",
        ),
        (
            "unknown junction",
            format!("/api/atcs/{city}/simpang-xyz/command"),
            extend.clone(),
            404,
            "simpang-xyz",
        ),
        (
            "unknown city",
            "/api/atcs/kota-tak-dikenal/simpang-pci/command".to_owned(),
            extend.clone(),
            404,
            "kota-tak-dikenal",
        ),
    ] {
        let (got, body) = post(path, body).await;
        assert_eq!(got, status, "{case}: {body}");
        assert_eq!(body["status"], status, "{case}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{case}: {body}");
    }
    // Accepted, and back through the bus and ingest.
    let (got, body) = post(here.clone(), extend.clone()).await;
    assert_eq!(got, 202, "{body}");
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    support::entity(&app, "command", &id, "the command back through ingest").await;
    // The broker goes away: 503, and nothing is queued for later.
    drop(p);
    drop(mosquitto);
    support::eventually(10, "the node sees the broker gone", || {
        let app = &app;
        async move {
            let r = reqwest::get(support::http(app, "/readyz")).await.ok()?;
            (r.status() == 503).then_some(())
        }
    })
    .await;
    let (got, body) = post(here, extend).await;
    assert_eq!(got, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("broker"),
        "{body}"
    );
    app.stop().await;
}

/// Reads what the server sends on `stream` until it closes or `secs` pass,
/// writing `drip` a byte at a time every 300 ms meanwhile; returns the reply
/// and when it ended.
async fn slow_client(
    addr: std::net::SocketAddr,
    head: &str,
    drip: &'static [u8],
    secs: u64,
) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await.expect("write the head");
    let writer = tokio::spawn(async move {
        for b in drip {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
        }
    });
    let start = std::time::Instant::now();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), rd.read_to_end(&mut reply)).await;
    writer.abort();
    (
        String::from_utf8_lossy(&reply).into_owned(),
        start.elapsed(),
    )
}

/// A client that sends its request a byte at a time is answered 408 and
/// let go after `http.head_timeout_s` (the head) or `http.body_timeout_s`
/// (the body, which was held for minutes), instead of holding the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_a_byte_at_a_time_is_cut_off_with_408() {
    let mut settings = support::settings(None);
    settings.http.head_timeout_s = 2;
    settings.http.body_timeout_s = 2;
    let app = support::spawn(settings).await;
    static BODY: [u8; 100] = [b' '; 100];
    // The sign-in endpoint: public, so the body is read (the gate answers
    // other routes before reading a body from a client without a session).
    let head = "POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 101\r\n\r\n{";
    let (reply, took) = slow_client(app.http_addr, head, &BODY, 8).await;
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "{reply:?} after {took:?}"
    );
    assert!(reply.contains("did not arrive within 2 s"), "{reply:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The head itself, a byte at a time.
    let (reply, took) = slow_client(
        app.http_addr,
        "GET /healthz HTTP/1.1\r\n",
        b"Host: localhost\r\n\r\n",
        8,
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "{reply:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // A request that arrives in time is served as before.
    let r = reqwest::get(support::http(&app, "/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}
