//! The bus ACL Kendali ships (`src/bus/mosquitto.acl`, written by `kendali
//! broker-config --out DIR`), on a private Mosquitto with the production
//! configuration and a password file made with mosquitto_passwd, as a city
//! would set it up: each kind of publisher reaches only its own topics,
//! clients without a valid login are refused, and Kendali logs in with
//! `mqtt.username` / `mqtt.password` and works through it.
//!
//! The clients speak MQTT 5, so the broker's answer to each QoS 1 publish is
//! its PUBACK reason (`NotAuthorized` when the ACL refuses). That a refused
//! message was not delivered is shown by order: after the refused ones the
//! same client publishes an allowed one, the subscriber receives exactly the
//! allowed messages in order (a refused one passed on would have come before
//! the last), then nothing more for a second.

use std::path::Path;
use std::time::Duration;

use kendali::contract::{example, MessageKind};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;

use crate::support::{self, PrivateMosquitto};

const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

/// The users, as a city creates them (username, password): Kendali, the
/// call centre, an ATCS controller (username = its intersection id) and a
/// service application (username = its service id).
const KENDALI: (&str, &str) = ("kendali", "kendali-rahasia");
const CALL_CENTRE: (&str, &str) = ("callcentre", "callcentre-rahasia");
const CONTROLLER: (&str, &str) = ("simpang-pci", "simpang-rahasia");
const APP: (&str, &str) = ("pengaduan", "pengaduan-rahasia");
const UNIT: (&str, &str) = ("amb-03", "amb-rahasia");
/// The contract example alert's topic, under `city/{city}/`.
const ALERT: &str = "alerts/0f6a3c52-9d1e-5b7a-8c4f-2e9b1d7a6c30";

/// A private Mosquitto with the production accounts: the shipped ACL as it
/// is, and a password file of the four users made with mosquitto_passwd.
fn broker(test: &str) -> Option<PrivateMosquitto> {
    if !Path::new(MOSQUITTO_PASSWD).exists() {
        let msg = format!("test `{test}` needs {MOSQUITTO_PASSWD} (apt-get install mosquitto)");
        if support::under_ci() {
            panic!("{msg} (CI=true)");
        }
        eprintln!("\n*** SKIPPED {test}: {msg}\n");
        return None;
    }
    PrivateMosquitto::start_with(test, |port, dir| {
        let (passwd, acl) = (dir.join("passwd"), dir.join("acl"));
        std::fs::write(&acl, kendali::bus::broker::MOSQUITTO_ACL).expect("write the ACL");
        for (i, (user, password)) in [KENDALI, CALL_CENTRE, CONTROLLER, APP, UNIT]
            .into_iter()
            .enumerate()
        {
            let mut cmd = std::process::Command::new(MOSQUITTO_PASSWD);
            if i == 0 {
                cmd.arg("-c");
            }
            let out = cmd
                .arg("-b")
                .arg(&passwd)
                .args([user, password])
                .output()
                .expect("run mosquitto_passwd");
            assert!(
                out.status.success(),
                "mosquitto_passwd {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        kendali::bus::broker::mosquitto_local_conf_with_accounts(port, dir, &passwd, &acl)
    })
}

/// An MQTT 5 client logged in as one user: what it receives, and the
/// broker's answer to each of its publishes (one at a time).
struct Client {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    acks: mpsc::UnboundedReceiver<PubAckReason>,
    subacks: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Logs in (`None`: anonymously); Err is the broker's refusal.
async fn connect(url: &str, login: Option<(&str, &str)>) -> Result<Client, ConnectReturnCode> {
    let u = kendali::bus::BrokerUrl::parse(url).expect("test url");
    let id = format!("acl-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut o = MqttOptions::new(id, u.host, u.port);
    if let Some((user, password)) = login {
        o.set_credentials(user, password);
    }
    let (client, mut el) = AsyncClient::new(o, 100);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), el.poll())
            .await
            .expect("the broker answers CONNECT within 10 s")
        {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("connecting as {login:?}: {e}"),
        }
    }
    let (received_tx, received) = mpsc::unbounded_channel();
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let (subacks_tx, subacks) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let _ = received_tx.send((topic, p.payload.to_vec()));
                }
                Ok(Event::Incoming(Packet::PubAck(a))) => {
                    let _ = acks_tx.send(a.reason);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subacks_tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok(Client {
        client,
        received,
        acks,
        subacks,
        task,
    })
}

impl Client {
    /// Publishes at QoS 1 and returns the broker's PUBACK reason.
    async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) -> PubAckReason {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
        tokio::time::timeout(Duration::from_secs(10), self.acks.recv())
            .await
            .unwrap_or_else(|_| panic!("no PUBACK for {topic} within 10 s"))
            .expect("the connection is open")
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        tokio::time::timeout(Duration::from_secs(10), self.subacks.recv())
            .await
            .expect("a SUBACK within 10 s")
            .expect("the connection is open");
    }

    /// The next message received within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Receives exactly `want` (topics, in order), then nothing for a second.
    async fn receives_exactly(&mut self, want: &[String]) {
        let mut got = Vec::new();
        while got.len() < want.len() {
            match self.next(Duration::from_secs(10)).await {
                Some((topic, _)) => got.push(topic),
                None => panic!("received {got:?}, waiting for {want:?}"),
            }
        }
        assert_eq!(got, want, "what the subscriber received");
        if let Some((topic, _)) = self.next(Duration::from_secs(1)).await {
            panic!("received {topic} after {want:?}");
        }
    }

    /// Publishes each of `denied` and expects the broker to refuse it.
    async fn refused(&mut self, who: &str, denied: &[String]) {
        for topic in denied {
            assert_eq!(
                self.publish(topic, payload(topic)).await,
                PubAckReason::NotAuthorized,
                "{who} publishing {topic}"
            );
        }
    }

    /// Publishes each of `allowed` and expects the broker to take it.
    async fn allowed(&mut self, who: &str, allowed: &[String]) {
        for topic in allowed {
            assert_eq!(
                self.publish(topic, payload(topic)).await,
                PubAckReason::Success,
                "{who} publishing {topic}"
            );
        }
    }
}

/// A contract example of the kind `topic` carries (the broker does not
/// look; it makes the refused messages real ones).
fn payload(topic: &str) -> Vec<u8> {
    let now = chrono::Utc::now().with_timezone(&kendali::domain::wib());
    let kind = kendali::contract::Topic::parse(topic)
        .map(|t| t.kind())
        .unwrap_or(MessageKind::AppEvent);
    example(kind, now).1.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_a_service_application_publishes_its_own_events_and_kpi_and_nothing_else() {
    let test = "acl_a_service_application_publishes_its_own_events_and_kpi_and_nothing_else";
    let Some(broker) = broker(test) else {
        return;
    };
    let city = support::city("acl");
    let t = |rest: &str| format!("city/{city}/{rest}");
    let mut kendali = connect(&broker.url, Some(KENDALI))
        .await
        .expect("kendali logs in");
    kendali.subscribe("city/#").await;
    let mut app = connect(&broker.url, Some(APP))
        .await
        .expect("the app logs in");
    app.allowed("the app", &[t("apps/pengaduan/events"), t("kpi/pengaduan")])
        .await;
    app.refused(
        "the app",
        &[
            t("calls/112"),
            t("calls/119"),
            t("atcs/simpang-pci/command"),
            t("atcs/simpang-pci/state"),
            t("apps/perizinan/events"),
            t("kpi/perizinan"),
            t("units/amb-03/status"),
            format!("city/{city}-lain/calls/112"),
        ],
    )
    .await;
    app.allowed("the app", &[t("kpi/pengaduan")]).await;
    kendali
        .receives_exactly(&[
            t("apps/pengaduan/events"),
            t("kpi/pengaduan"),
            t("kpi/pengaduan"),
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_an_atcs_controller_speaks_and_hears_only_for_its_own_intersection() {
    let test = "acl_an_atcs_controller_speaks_and_hears_only_for_its_own_intersection";
    let Some(broker) = broker(test) else {
        return;
    };
    let city = support::city("acl");
    let t = |rest: &str| format!("city/{city}/{rest}");
    let mut kendali = connect(&broker.url, Some(KENDALI))
        .await
        .expect("kendali logs in");
    kendali.subscribe("city/#").await;
    let mut ctl = connect(&broker.url, Some(CONTROLLER))
        .await
        .expect("the controller logs in");
    let own = [
        t("atcs/simpang-pci/state"),
        t("atcs/simpang-pci/info"),
        t("atcs/simpang-pci/command/ack"),
    ];
    ctl.allowed("simpang-pci", &own).await;
    ctl.refused(
        "simpang-pci",
        &[
            t("atcs/simpang-lain/state"),
            t("atcs/simpang-lain/info"),
            t("atcs/simpang-lain/command/ack"),
            // A controller does not command, not even itself.
            t("atcs/simpang-pci/command"),
            t("atcs/simpang-lain/command"),
            // Nor raise or acknowledge alerts: only Kendali publishes them.
            t(ALERT),
            t("calls/112"),
        ],
    )
    .await;
    ctl.allowed("simpang-pci", &[t("atcs/simpang-pci/state")])
        .await;
    let mut want = own.to_vec();
    want.push(t("atcs/simpang-pci/state"));
    kendali.receives_exactly(&want).await;

    // It hears its own commands only, though it asks for every one.
    ctl.subscribe("city/+/atcs/+/command").await;
    kendali
        .allowed(
            "kendali",
            &[
                t("atcs/simpang-lain/command"),
                t("atcs/simpang-pci/command"),
            ],
        )
        .await;
    ctl.receives_exactly(&[t("atcs/simpang-pci/command")]).await;
    // Kendali publishes what its people do (commands, call events from its
    // console, orders to units): it cannot speak for a controller or a unit.
    kendali
        .refused(
            "kendali",
            &[
                t("atcs/simpang-pci/state"),
                t("units/amb-03/status"),
                t("atcs/kendali/state"),
            ],
        )
        .await;
    // It relays what applications without an MQTT client send it over
    // HTTP, each with its own token (`kendali apps add`).
    kendali
        .allowed("kendali", &[t("apps/pengaduan/events"), t("kpi/pengaduan")])
        .await;
    // Its alerts' transitions, which other city systems may follow.
    kendali.allowed("kendali", &[t(ALERT)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_the_call_centre_publishes_call_events_and_nothing_else() {
    let test = "acl_the_call_centre_publishes_call_events_and_nothing_else";
    let Some(broker) = broker(test) else {
        return;
    };
    let city = support::city("acl");
    let t = |rest: &str| format!("city/{city}/{rest}");
    let mut kendali = connect(&broker.url, Some(KENDALI))
        .await
        .expect("kendali logs in");
    kendali.subscribe("city/#").await;
    let mut cc = connect(&broker.url, Some(CALL_CENTRE))
        .await
        .expect("the call centre logs in");
    cc.allowed("the call centre", &[t("calls/112"), t("calls/119")])
        .await;
    cc.refused(
        "the call centre",
        &[
            t("atcs/simpang-pci/state"),
            t("atcs/simpang-pci/command"),
            // Not even as an entity of its own name (its `topic deny` line).
            t("atcs/callcentre/state"),
            t("apps/callcentre/events"),
            t("kpi/callcentre"),
            t("units/callcentre/status"),
        ],
    )
    .await;
    cc.allowed("the call centre", &[t("calls/112")]).await;
    kendali
        .receives_exactly(&[t("calls/112"), t("calls/119"), t("calls/112")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_a_field_unit_reports_its_own_status_and_hears_only_its_own_orders() {
    let test = "acl_a_field_unit_reports_its_own_status_and_hears_only_its_own_orders";
    let Some(broker) = broker(test) else {
        return;
    };
    let city = support::city("acl");
    let t = |rest: &str| format!("city/{city}/{rest}");
    let mut kendali = connect(&broker.url, Some(KENDALI))
        .await
        .expect("kendali logs in");
    kendali.subscribe("city/#").await;
    let mut unit = connect(&broker.url, Some(UNIT))
        .await
        .expect("the unit logs in");
    // It asks for every unit's orders; the broker gives it its own.
    unit.subscribe("city/+/units/+/assignment").await;
    unit.allowed("amb-03", &[t("units/amb-03/status")]).await;
    unit.refused(
        "amb-03",
        &[
            t("units/amb-04/status"),
            // A unit does not give itself orders.
            t("units/amb-03/assignment"),
            t("calls/112"),
        ],
    )
    .await;
    kendali
        .allowed(
            "kendali",
            &[t("units/amb-04/assignment"), t("units/amb-03/assignment")],
        )
        .await;
    unit.receives_exactly(&[t("units/amb-03/assignment")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_clients_without_a_valid_login_are_refused() {
    let test = "acl_clients_without_a_valid_login_are_refused";
    let Some(broker) = broker(test) else {
        return;
    };
    for (case, login) in [
        ("anonymous", None),
        ("a wrong password", Some((KENDALI.0, "tebakan"))),
        ("an unknown user", Some(("simpang-baru", "rahasia"))),
    ] {
        match connect(&broker.url, login).await {
            Ok(_) => panic!("{case}: logged in"),
            Err(code) => assert_eq!(code, ConnectReturnCode::NotAuthorized, "{case}"),
        }
    }
    // MQTT 3.1.1 too (Kendali's default protocol, and most field devices').
    let u = kendali::bus::BrokerUrl::parse(&broker.url).unwrap();
    let o = rumqttc::MqttOptions::new("acl-anonymous-v4", u.host, u.port);
    let (_client, mut el) = rumqttc::AsyncClient::new(o, 10);
    match tokio::time::timeout(Duration::from_secs(10), el.poll()).await {
        Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("anonymous over MQTT 3.1.1: {other:?}"),
    }
    // The right password logs in (the refusals above are not a broken broker).
    connect(&broker.url, Some(KENDALI))
        .await
        .expect("kendali logs in");
}

/// Kendali, with its user in `mqtt.username` / `mqtt.password`, connects and
/// subscribes through the ACL, ingests what the publishers may publish and
/// not what they may not, and its operator commands reach the controller,
/// whose ack comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_kendali_logs_in_with_its_user_and_works_through_the_acl() {
    let test = "acl_kendali_logs_in_with_its_user_and_works_through_the_acl";
    let Some(broker) = broker(test) else {
        return;
    };
    let mut settings = support::settings(Some(broker.url.clone()));
    settings.mqtt.username = Some(KENDALI.0.into());
    settings.mqtt.password = Some(KENDALI.1.into());
    let app = support::spawn(settings).await;
    let city = support::city("acl");
    let t = |rest: &str| format!("city/{city}/{rest}");

    // The service app's KPI reaches the wall; a call event it tries does not.
    let mut svc = connect(&broker.url, Some(APP))
        .await
        .expect("the app logs in");
    svc.refused("the app", &[t("calls/112")]).await;
    svc.allowed("the app", &[t("kpi/pengaduan")]).await;
    support::entity(
        &app,
        "kpi",
        &format!("{city}/pengaduan/permits_on_time_pct"),
        "the app's KPI on the wall",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let state = support::get_json(&app, "/api/state").await;
    let calls: Vec<&String> = state["entities"]["call"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| k.starts_with(&format!("{city}/")))
        .collect();
    assert!(
        calls.is_empty(),
        "the refused call reached Kendali: {calls:?}"
    );

    // The controller announces itself, and hears the command an operator sends.
    let mut ctl = connect(&broker.url, Some(CONTROLLER))
        .await
        .expect("the controller logs in");
    ctl.subscribe(&t("atcs/simpang-pci/command")).await;
    ctl.allowed("simpang-pci", &[t("atcs/simpang-pci/info")])
        .await;
    let key = format!("{city}/simpang-pci");
    support::entity(&app, "intersection", &key, "the junction on the wall").await;
    let officer = support::sign_in(&app, "petugas", &["traffic_officer"], &[], &[]).await;
    let r = officer
        .client
        .post(support::http(
            &app,
            &format!("/api/atcs/{city}/simpang-pci/command"),
        ))
        .json(&serde_json::json!({"action": "set_mode", "mode": "manual", "reason": "uji"}))
        .send()
        .await
        .expect("POST the command");
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.expect("a JSON body");
    let id = body["command"]["command_id"]
        .as_str()
        .expect("a command id")
        .to_owned();
    let (topic, cmd) = ctl
        .next(Duration::from_secs(10))
        .await
        .expect("the command reaches the controller");
    assert_eq!(topic, t("atcs/simpang-pci/command"));
    let cmd: serde_json::Value = serde_json::from_slice(&cmd).expect("a JSON command");
    assert_eq!(cmd["command_id"], id.as_str());

    // Its ack closes the command on the wall.
    let ack = serde_json::json!({
        "command_id": id,
        "ts": support::now_wib(),
        "status": "applied",
        "reason": null,
    });
    assert_eq!(
        ctl.publish(&t("atcs/simpang-pci/command/ack"), ack.to_string())
            .await,
        PubAckReason::Success
    );
    let app_ref = &app;
    let id_ref = id.as_str();
    support::eventually(10, "the command applied on the wall", || async move {
        let s = support::get_json(app_ref, "/api/state").await;
        (s["entities"]["command"][id_ref]["status"] == "applied").then_some(())
    })
    .await;
    app.stop().await;
}
