//! Test support: the real services (Mosquitto, PostgreSQL) or a loud skip,
//! free ports, and a Kendali node started in-process on them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use kendali::app::{Application, RunningApp};
use kendali::config::Settings;

pub const MOSQUITTO: &str = "127.0.0.1:1883";

/// Whether we run under CI, where a missing service fails the run: any
/// non-empty `CI` but `false` or `0` (CI systems set `true`, `yes`, `1`...).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| ci_value_means_ci(&v))
}

fn ci_value_means_ci(v: &str) -> bool {
    let v = v.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

#[test]
fn any_ci_value_but_false_or_0_means_ci() {
    for v in ["true", "True", "TRUE", "yes", "1", "on", "github"] {
        assert!(ci_value_means_ci(v), "{v}");
    }
    for v in ["", " ", "0", "false", "False", "FALSE"] {
        assert!(!ci_value_means_ci(v), "{v:?}");
    }
}

fn reachable(addr: &str) -> bool {
    let a: SocketAddr = addr.parse().expect("literal address");
    TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
}

/// The machine's Mosquitto, or None after a loud skip notice (a panic under CI=true).
pub fn mosquitto(test: &str) -> Option<String> {
    if reachable(MOSQUITTO) {
        return Some(format!("mqtt://{MOSQUITTO}"));
    }
    let msg = format!(
        "Mosquitto is not answering on {MOSQUITTO}: test `{test}` needs it. Start it with \
         `mkdir -p /run/mosquitto && chown mosquitto /run/mosquitto && mosquitto -d -c /etc/mosquitto/mosquitto.conf`"
    );
    if under_ci() {
        panic!("{msg} (CI=true: a missing service fails the run)");
    }
    eprintln!("\n*** SKIPPED {test}: {msg}\n");
    None
}

pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    l.local_addr().expect("bound listener has an address")
}

/// A unique city slug, so that tests sharing a broker do not see each other.
pub fn city(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A unique `mqtt.shared_group`, so that tests sharing a broker share no group.
pub fn shared_group() -> String {
    city("kendali")
}

/// Whether the node at `http` runs the rules (`kendali_rules_leader` 1).
pub async fn runs_rules(http: SocketAddr) -> bool {
    reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text")
        .lines()
        .any(|l| l == "kendali_rules_leader 1")
}

/// Which of two nodes of a shared group runs the rules, once one does;
/// both at once fails the test.
pub async fn rules_node(https: [SocketAddr; 2]) -> usize {
    eventually(10, "one node running the rules", || async move {
        match (runs_rules(https[0]).await, runs_rules(https[1]).await) {
            (true, false) => Some(0),
            (false, true) => Some(1),
            (true, true) => panic!("both nodes run the rules"),
            _ => None,
        }
    })
    .await
}

/// Settings for a test node: free HTTP port, no simulator, a unique client id.
/// On the machine's shared Mosquitto the node speaks MQTT 5 with a short
/// session expiry, so finished tests leave no session queueing messages
/// behind (the private brokers and the embedded one exercise MQTT 3.1.1).
pub fn settings(mqtt_url: Option<String>) -> Settings {
    let mut s = Settings::default();
    if mqtt_url.as_deref() == Some(&format!("mqtt://{MOSQUITTO}")) {
        s.mqtt.protocol = kendali::config::MqttProtocol::V5;
        s.mqtt.session_expiry_s = 30;
    }
    s.http.addr = "127.0.0.1:0".parse().expect("literal address");
    s.mqtt.url = mqtt_url;
    s.mqtt.broker_addr = free_addr();
    s.mqtt.client_id = format!(
        "kendali-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    s.sim.enabled = false;
    s
}

pub async fn spawn(settings: Settings) -> RunningApp {
    let app = Application::build(settings).await.expect("kendali starts");
    let running = app.spawn();
    wait_ready(&running).await;
    running
}

pub fn http(app: &RunningApp, path: &str) -> String {
    format!("http://{}{}", app.http_addr, path)
}

/// Waits until the node reports its broker connected and every
/// subscription acknowledged (so a message published now reaches it).
pub async fn wait_ready(app: &RunningApp) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(http(app, "/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kendali did not become ready within 10 s");
}

pub async fn get_json(app: &RunningApp, path: &str) -> serde_json::Value {
    reqwest::get(http(app, path))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}

/// The node's Prometheus text (`/metrics`).
pub async fn metrics(app: &RunningApp) -> String {
    reqwest::get(http(app, "/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The sum of the samples whose line starts with `name` (a metric name,
/// optionally with its labels).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the live state (`/api/state`) has the entity `key` of `kind`
/// (e.g. `"intersection"`, `"kota/x1"`), and returns its value.
pub async fn entity(app: &RunningApp, kind: &str, key: &str, what: &str) -> serde_json::Value {
    eventually(10, what, || async move {
        get_json(app, "/api/state").await["entities"][kind]
            .get(key)
            .cloned()
    })
    .await
}

/// The live intersection `key` (`{city}/{id}`) once a state has come for it
/// (its info alone may come first).
pub async fn junction_state(app: &RunningApp, key: &str) -> serde_json::Value {
    eventually(10, "the junction's state", || async move {
        let j = get_json(app, "/api/state").await["entities"]["intersection"]
            .get(key)
            .cloned()?;
        (!j["state"].is_null()).then_some(j)
    })
    .await
}

/// A plain MQTT publisher for tests (raw bytes, no validation).
pub struct Publisher {
    client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    pub async fn connect(url: &str) -> Publisher {
        let u = kendali::bus::BrokerUrl::parse(url).expect("test url");
        let id = format!(
            "test-pub-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut o = rumqttc::MqttOptions::new(id, u.host, u.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = rumqttc::AsyncClient::new(o, 10_000);
        let task = tokio::spawn(async move {
            loop {
                if el.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Publisher { client, task }
    }

    pub async fn send(&self, topic: &str, qos: u8, payload: impl Into<Vec<u8>>) {
        self.publish(topic, qos, false, payload.into()).await
    }

    /// A retained message (an empty payload clears the topic's).
    pub async fn send_retained(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.publish(topic, 1, true, payload.into()).await
    }

    async fn publish(&self, topic: &str, qos: u8, retain: bool, payload: Vec<u8>) {
        let q = if qos == 0 {
            rumqttc::QoS::AtMostOnce
        } else {
            rumqttc::QoS::AtLeastOnce
        };
        self.client
            .publish(topic, q, retain, payload)
            .await
            .expect("publish queued");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes one QoS 1 message with Kendali's own bus client and `mqtt`'s
/// settings (TLS, credentials), and waits for the broker's PUBACK.
pub async fn publish_once(
    url: &str,
    mqtt: &kendali::config::MqttSettings,
    topic: &str,
    payload: Vec<u8>,
) {
    use kendali::bus::{self, BusEvent, ConnectOptions, Qos};
    let u = bus::BrokerUrl::parse(url).expect("test url");
    let (client, mut events) = bus::connect(
        &u,
        mqtt,
        &ConnectOptions {
            client_id: format!(
                "test-once-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            persistent: false,
            manual_acks: false,
            max_packet_bytes: 1 << 20,
            request_capacity: 16,
        },
    )
    .expect("a bus client");
    client
        .publish(topic.to_owned(), Qos::AtLeastOnce, false, payload)
        .await
        .expect("publish queued");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(BusEvent::PubAck)) => break,
            Ok(Ok(_)) => {}
            other => panic!("publishing {topic}: {other:?}"),
        }
    }
    client.disconnect().await;
}

/// Now in WIB, RFC 3339.
pub fn now_wib() -> String {
    chrono::Utc::now()
        .with_timezone(&kendali::domain::wib())
        .to_rfc3339()
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A screen: a websocket client that keeps the state it is sent.
pub struct Screen {
    pub ws: WsStream,
    /// (kind, key) -> (seq, value)
    pub entities: std::collections::BTreeMap<(String, String), (u64, serde_json::Value)>,
    /// Events in arrival order: (seq, kind, value).
    pub events: Vec<(u64, String, serde_json::Value)>,
    /// When each event arrived here (µs since the epoch), parallel to `events`.
    pub event_rx_us: Vec<i64>,
    /// `last_seq` as PROTOCOL.md defines it (what a resume passes as `since`).
    pub seq: u64,
    pub frames: Vec<serde_json::Value>,
}

/// A websocket upgrade request for `/ws?{query}`, with a session cookie if given.
pub fn ws_request(
    app: &RunningApp,
    query: &str,
    cookie: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ws?{query}", app.http_addr)
        .into_client_request()
        .expect("a websocket request");
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", c.parse().expect("cookie header"));
    }
    req
}

impl Screen {
    pub async fn connect(app: &RunningApp, query: &str) -> Screen {
        Screen::connect_as(app, query, None).await
    }

    /// A screen with a session cookie (`None`: the anonymous loopback wall).
    pub async fn connect_as(app: &RunningApp, query: &str, cookie: Option<&str>) -> Screen {
        let (ws, _) = tokio_tungstenite::connect_async(ws_request(app, query, cookie))
            .await
            .expect("ws connects");
        Screen::new(ws)
    }

    /// A screen on a socket already open, nothing read yet.
    pub fn new(ws: WsStream) -> Screen {
        Screen {
            ws,
            entities: Default::default(),
            events: Vec::new(),
            event_rx_us: Vec::new(),
            seq: 0,
            frames: Vec::new(),
        }
    }

    /// The next websocket message as it came (close frames included); None on timeout or end.
    pub async fn next_message(
        &mut self,
        timeout: Duration,
    ) -> Option<tokio_tungstenite::tungstenite::Message> {
        use futures_util::StreamExt;
        tokio::time::timeout(timeout, self.ws.next())
            .await
            .ok()??
            .ok()
    }

    /// Reads one frame and applies it; None on close or timeout.
    pub async fn step(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        use futures_util::StreamExt;
        loop {
            let msg = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                tokio_tungstenite::tungstenite::Message::Text(t) => {
                    let v: serde_json::Value =
                        serde_json::from_str(&t).expect("server frames are JSON");
                    self.apply(&v);
                    self.frames.push(v.clone());
                    return Some(v);
                }
                tokio_tungstenite::tungstenite::Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    pub fn apply(&mut self, frame: &serde_json::Value) {
        let ty = frame["type"].as_str().unwrap_or("");
        if ty == "snapshot" {
            self.entities.clear();
        }
        for list in ["updates", "events"] {
            for u in frame[list].as_array().into_iter().flatten() {
                let (seq, kind, key) = (
                    u["seq"].as_u64().unwrap(),
                    u["kind"].as_str().unwrap().to_owned(),
                    u["key"].as_str().unwrap().to_owned(),
                );
                if kind.ends_with("_event") {
                    self.events.push((seq, kind, u["value"].clone()));
                    self.event_rx_us.push(chrono::Utc::now().timestamp_micros());
                } else if u["value"].is_null() {
                    self.entities.remove(&(kind, key));
                } else {
                    let e = self
                        .entities
                        .entry((kind, key))
                        .or_insert((0, serde_json::Value::Null));
                    if seq >= e.0 {
                        *e = (seq, u["value"].clone());
                    }
                }
            }
        }
        // PROTOCOL.md: last_seq is the seq of the last snapshot, delta or
        // heartbeat; a `resumed` frame's seq is where its catch-up will end,
        // not what has arrived.
        if let Some(s) = frame["seq"].as_u64() {
            if matches!(ty, "snapshot" | "delta" | "heartbeat") {
                self.seq = self.seq.max(s);
            }
        }
    }

    /// Reads until `done` holds, or panics after `secs`.
    pub async fn until(&mut self, secs: u64, what: &str, mut done: impl FnMut(&Screen) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                panic!("timed out after {secs} s waiting for {what}");
            }
            if self.step(left).await.is_none() && !done(self) {
                panic!("socket closed or timed out waiting for {what}");
            }
        }
    }

    pub async fn send(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .expect("send");
    }
}

/// A call event payload for `city`, with a note carrying its publish time.
pub fn call_event(call_id: &str, kind: &str, line: &str) -> (String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let payload = format!(
        r#"{{"event_id":"{id}","call_id":"{call_id}","ts":"{}","line":"{line}","type":"{kind}","note":"sent {}"}}"#,
        now_wib(),
        chrono::Utc::now().timestamp_micros()
    );
    (id, payload)
}

pub const POSTGRES: &str = "127.0.0.1:5432";

/// A fresh, empty database on the machine's PostgreSQL, or None after a loud
/// skip notice (a panic under CI=true).
pub async fn postgres(test: &str) -> Option<String> {
    if !reachable(POSTGRES) {
        let msg = format!(
            "PostgreSQL is not answering on {POSTGRES}: test `{test}` needs it. Start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        );
        if under_ci() {
            panic!("{msg} (CI=true: a missing service fails the run)");
        }
        eprintln!("\n*** SKIPPED {test}: {msg}\n");
        return None;
    }
    let name = format!(
        "kendali_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let (client, conn) = tokio_postgres::connect(&pg_url("postgres"), tokio_postgres::NoTls)
        .await
        .expect("connect to the machine's PostgreSQL as postgres");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    Some(pg_url(&name))
}

/// The URL of database `db` on the machine's PostgreSQL, as `postgres`,
/// with the password of PGPASSWORD when set (`.ci/run` sets one where the
/// server asks `postgres` for a password over TCP).
pub fn pg_url(db: &str) -> String {
    let mut url =
        url::Url::parse(&format!("postgres://postgres@{POSTGRES}/{db}")).expect("a literal URL");
    if let Ok(p) = std::env::var("PGPASSWORD") {
        if !p.is_empty() {
            url.set_password(Some(&p))
                .expect("postgres URLs take a password");
        }
    }
    url.to_string()
}

pub async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(conn);
    client
}

/// Runs the kendali binary with `args` (and `stdin`): its exit code and its
/// output (standard output, then standard error).
pub async fn kendali(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kendali"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kendali runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kendali finishes")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The `cilegon-weekday` scenario starting at 09:00 WIB, written to a file
/// (its path): a test that waits for simulated calls must not depend on the
/// hour it runs at (at 02:00 WIB the city makes a call every twenty minutes).
pub fn daytime_scenario() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/cilegon-weekday.toml"
    ))
    .expect("the built-in scenario");
    let marker = "# start_time unset: the simulation starts at the current WIB time of day.";
    assert!(
        text.contains(marker),
        "the scenario's start_time line moved"
    );
    let path = std::env::temp_dir().join(format!(
        "kendali-cilegon-0900-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text.replace(marker, "start_time = \"09:00\""))
        .expect("write the scenario");
    path.to_string_lossy().into_owned()
}

/// Waits until the call event `id` is in `call_events`.
pub async fn call_stored(client: &tokio_postgres::Client, id: &str, what: &str) {
    eventually(10, what, || async move {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM call_events WHERE event_id = $1::text::uuid",
                &[&id],
            )
            .await
            .ok()?
            .get(0);
        (n == 1).then_some(())
    })
    .await;
}

/// A private Mosquitto with the production configuration Kendali ships
/// (`kendali broker-config`), on a free port, persisting into its own folder.
pub struct PrivateMosquitto {
    pub url: String,
    child: std::process::Child,
    bin: &'static str,
    /// Its configuration file.
    pub conf: std::path::PathBuf,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PrivateMosquitto {
    pub fn start(test: &str) -> Option<PrivateMosquitto> {
        Self::start_with(test, kendali::bus::broker::mosquitto_local_conf)
    }

    /// With the configuration `conf(port, dir)` returns, for the free port
    /// and the broker's own folder (where it may write more files first).
    pub fn start_with(
        test: &str,
        conf: impl FnOnce(u16, &std::path::Path) -> String,
    ) -> Option<PrivateMosquitto> {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            let msg =
                format!("test `{test}` needs the mosquitto binary (apt-get install mosquitto)");
            if under_ci() {
                panic!("{msg} (CI=true)");
            }
            eprintln!("\n*** SKIPPED {test}: {msg}\n");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let conf = conf(addr.port(), dir.path());
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).expect("write config");
        let child = Self::spawn(bin, &path, addr);
        Some(PrivateMosquitto {
            url: format!("mqtt://{addr}"),
            child,
            bin,
            conf: path,
            addr,
            _dir: dir,
        })
    }

    // The child is killed and reaped in `Drop` or `restart`, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    fn spawn(bin: &str, conf: &std::path::Path, addr: SocketAddr) -> std::process::Child {
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto");
        for _ in 0..200 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private mosquitto did not start on {addr}");
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its
    /// persistence file) and starts it again on the same port and folder.
    pub fn restart(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("mosquitto exits");
        self.child = Self::spawn(self.bin, &self.conf, self.addr);
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A QoS 1 publisher that counts the broker's acknowledgements.
pub struct CountingPublisher {
    pub client: rumqttc::AsyncClient,
    pub acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingPublisher {
    pub async fn connect(url: &str) -> CountingPublisher {
        Self::connect_with(url, false).await
    }

    /// With a persistent session, as a field gateway that must not lose a
    /// call across a broker restart would connect: rumqttc then resends its
    /// unacknowledged publishes when the broker reports the session present
    /// (with a clean session they are dropped, or collide: rumqtt #1014).
    pub async fn connect_persistent(url: &str) -> CountingPublisher {
        Self::connect_with(url, true).await
    }

    async fn connect_with(url: &str, persistent: bool) -> CountingPublisher {
        let u = kendali::bus::BrokerUrl::parse(url).expect("test url");
        let id = format!(
            "test-cpub-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut o = rumqttc::MqttOptions::new(id, u.host, u.port);
        o.set_inflight(1000).set_clean_session(!persistent);
        let (client, mut el) = rumqttc::AsyncClient::new(o, 10_000);
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        CountingPublisher {
            client,
            acked,
            task,
        }
    }

    pub async fn send(&self, topic: &str, payload: String) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
    }

    pub fn acked(&self) -> usize {
        self.acked.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for CountingPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A throwaway PostgreSQL cluster of a test's own (`initdb` on a free port),
/// so that a test may stop and start it without touching the machine's one.
pub struct ThrowawayPostgres {
    pub url: String,
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl ThrowawayPostgres {
    fn run(&self, program: &str, args: &[String]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        cmd.args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
    }

    pub fn start(test: &str) -> Option<ThrowawayPostgres> {
        Self::start_with(test, false)
    }

    /// A throwaway cluster that preloads TimescaleDB (installed from source
    /// by `../shared/timescaledb/install.sh`, which `.ci/run` runs).
    pub fn start_timescale(test: &str) -> Option<ThrowawayPostgres> {
        Self::start_with(test, true)
    }

    fn start_with(test: &str, timescale: bool) -> Option<ThrowawayPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|p| p.join("initdb").exists())
        });
        let Some(bin) = bin else {
            let msg = format!("test `{test}` needs PostgreSQL's server binaries (initdb, pg_ctl) under /usr/lib/postgresql");
            if under_ci() {
                panic!("{msg} (CI=true)");
            }
            eprintln!("\n*** SKIPPED {test}: {msg}\n");
            return None;
        };
        if timescale && !bin.join("../lib/timescaledb.so").exists() {
            let msg = format!(
                "test `{test}` needs TimescaleDB installed into PostgreSQL ({}): \
                 run ../shared/timescaledb/install.sh (`.ci/run` does)",
                bin.join("../lib").display()
            );
            if under_ci() {
                panic!("{msg} (CI=true)");
            }
            eprintln!("\n*** SKIPPED {test}: {msg}\n");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("kendali-pg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        if is_root() {
            let ok = std::process::Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "chown of the throwaway cluster's folder to postgres");
        }
        let data = dir.path().join("data");
        let port = free_addr().port();
        let pg = ThrowawayPostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            dir,
            port,
        };
        let out = pg.run(
            "initdb",
            &[
                "-D".into(),
                pg.data.display().to_string(),
                "-A".into(),
                "trust".into(),
                "-U".into(),
                "postgres".into(),
                "--no-sync".into(),
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if timescale {
            // More workers than TimescaleDB's policy jobs (the default 8 is too few).
            use std::io::Write;
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(pg.data.join("postgresql.conf"))
                .expect("postgresql.conf");
            writeln!(
                conf,
                "shared_preload_libraries = 'timescaledb'\n\
                 timescaledb.telemetry_level = off\n\
                 max_worker_processes = 32"
            )
            .expect("postgresql.conf written");
        }
        pg.pg_start();
        Some(pg)
    }

    pub fn pg_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data.display().to_string(),
                "-o".into(),
                opts,
                "-l".into(),
                log,
                "-w".into(),
                "start".into(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops at once, as a crash or a pulled cable would.
    pub fn pg_stop(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data.display().to_string(),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "stop".into(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data.display().to_string(),
                "-m".into(),
                "immediate".into(),
                "stop".into(),
            ],
        );
    }
}

/// A person signed in to a running node: a client that sends their session cookie.
pub struct SignedIn {
    pub client: reqwest::Client,
    /// `kendali_session=...`, for websocket upgrades.
    pub cookie: String,
}

impl SignedIn {
    /// `GET path` with this person's session, as JSON.
    pub async fn get_json(&self, app: &RunningApp, path: &str) -> serde_json::Value {
        self.client
            .get(http(app, path))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("a JSON body")
    }
}

/// Adds a user with these roles and scope to the node's directory, signs
/// them in through `POST /api/login`, and returns their client.
pub async fn sign_in(
    app: &RunningApp,
    username: &str,
    roles: &[&str],
    cities: &[&str],
    districts: &[&str],
) -> SignedIn {
    let password = format!("{username}-sandi-rahasia");
    let user = kendali::identity::directory::User {
        username: username.to_owned(),
        roles: roles
            .iter()
            .map(|r| kendali::identity::Role::parse(r).expect("a known role"))
            .collect(),
        cities: cities.iter().map(|c| c.to_string()).collect(),
        districts: districts.iter().map(|d| d.to_string()).collect(),
        disabled: false,
        created: chrono::Utc::now(),
        password_hash: kendali::identity::password::hash(&password).expect("hash"),
    };
    app.directory.add_user(user).await.expect("user added");
    let r = reqwest::Client::new()
        .post(http(app, "/api/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login answers");
    assert_eq!(r.status(), 200, "{username} signs in");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("kendali_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        cookie.parse().expect("cookie header"),
    );
    SignedIn {
        client: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client"),
        cookie,
    }
}

/// Every route the web modules declare (`#[get("...")]`, `#[post("...")]`
/// in src/web and below), as `(METHOD, pattern)`.
pub fn declared_routes() -> std::collections::BTreeSet<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut std::collections::BTreeSet<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src/web") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            for line in text.lines().map(str::trim) {
                for method in ["get", "post", "put", "delete", "patch"] {
                    if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                        let pattern = rest.split("\")]").next().expect("closing quote");
                        // The attribute's text is a Rust string literal: `\\.` is `\.`.
                        out.insert((method.to_uppercase(), pattern.replace("\\\\", "\\")));
                    }
                }
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web"),
        &mut out,
    );
    out
}

/// `GET path` as a supervisor newly signed in (the dead-letter is theirs to read).
pub async fn get_json_as_supervisor(app: &RunningApp, path: &str) -> serde_json::Value {
    let name = format!(
        "supervisor-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sign_in(app, &name, &["supervisor"], &[], &[])
        .await
        .get_json(app, path)
        .await
}

/// An MQTT subscriber that keeps every message it hears on one filter
/// (topic and JSON payload), from the moment `listen` returns.
pub struct Listener {
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn listen(url: &str, filter: &str) -> Listener {
        let u = kendali::bus::BrokerUrl::parse(url).expect("test url");
        let id = format!(
            "test-listener-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let (client, mut el) =
            rumqttc::AsyncClient::new(rumqttc::MqttOptions::new(id, u.host, u.port), 100);
        let filter = filter.to_owned();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sink, (subscribed, ready)) = (got.clone(), tokio::sync::oneshot::channel());
        let mut subscribed = Some(subscribed);
        let task = tokio::spawn(async move {
            let _keep = client.clone();
            client
                .subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .await
                .expect("subscribe queued");
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(s) = subscribed.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        sink.lock().unwrap().push((p.topic.clone(), v));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        ready.await.expect("subscribed");
        Listener { got, task }
    }

    /// Every message so far, with its topic.
    pub fn all(&self) -> Vec<(String, serde_json::Value)> {
        self.got.lock().unwrap().clone()
    }

    /// Every payload so far.
    pub fn payloads(&self) -> Vec<serde_json::Value> {
        self.all().into_iter().map(|(_, v)| v).collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
