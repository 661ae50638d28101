//! `kendali doctor`: what a room needs, checked before (or while) it runs,
//! each problem printed with its fix. It looks and changes nothing: the
//! ports, the broker (connect, subscribe to every family, the queue settings
//! of a local Mosquitto that keep QoS 1 messages through a pause, the clocks
//! of the bus's publishers against this machine's), and the database
//! (version, TimescaleDB and its failed background jobs, the migrations,
//! the role's privileges and the audit's append-only triggers).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use crate::bus::{self, BrokerUrl, BusEvent, ConnectOptions, Qos};
use crate::config::Settings;
use crate::contract::{decode, Family, Limits};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// Works, but not as a room in production should.
    Warn,
    /// Kendali will not work (or will lose data) until it is fixed.
    Fail,
    /// Not checked, and why.
    Skip,
}

/// One check's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub area: &'static str,
    pub level: Level,
    pub what: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, area: &'static str, level: Level, what: String, fix: Option<String>) {
        self.findings.push(Finding {
            area,
            level,
            what,
            fix,
        });
    }
    fn ok(&mut self, area: &'static str, what: impl Into<String>) {
        self.add(area, Level::Ok, what.into(), None);
    }
    fn skip(&mut self, area: &'static str, what: impl Into<String>) {
        self.add(area, Level::Skip, what.into(), None);
    }
    fn warn(&mut self, area: &'static str, what: impl Into<String>, fix: impl Into<String>) {
        self.add(area, Level::Warn, what.into(), Some(fix.into()));
    }
    fn fail(&mut self, area: &'static str, what: impl Into<String>, fix: impl Into<String>) {
        self.add(area, Level::Fail, what.into(), Some(fix.into()));
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }

    /// One line per finding, its fix under it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
                Level::Skip => "skip",
            };
            let _ = writeln!(out, "{tag} {:<9} {}", f.area, f.what);
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "     {:<9} fix: {fix}", "");
            }
        }
        let (warn, fail) = (
            self.findings
                .iter()
                .filter(|f| f.level == Level::Warn)
                .count(),
            self.findings
                .iter()
                .filter(|f| f.level == Level::Fail)
                .count(),
        );
        let _ = writeln!(
            out,
            "{} checks: {fail} failed, {warn} warnings",
            self.findings.len()
        );
        out
    }
}

/// What the doctor is told besides the settings.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// The broker's configuration file, when the broker runs here.
    pub mosquitto_conf: Option<PathBuf>,
    /// How long to listen to the bus for the clocks' skew.
    pub listen: Duration,
}

/// Runs every check.
pub async fn run(settings: &Settings, o: &DoctorOptions) -> Report {
    let mut r = Report::default();
    r.ok("settings", "the settings load and are valid");
    ports(settings, &mut r).await;
    broker(settings, o, &mut r).await;
    mosquitto_conf(settings, o, &mut r);
    database(settings, &mut r).await;
    r
}

/// Whether something answers `/healthz` as Kendali does on `addr`.
async fn kendali_answers(addr: std::net::SocketAddr) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build();
    let Ok(client) = client else { return false };
    client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn ports(s: &Settings, r: &mut Report) {
    let http = s.http.addr;
    match tokio::net::TcpListener::bind(http).await {
        Ok(_) => r.ok("ports", format!("http.addr {http} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if kendali_answers(http).await {
                r.ok("ports", format!("http.addr {http}: a Kendali answers there (running)"));
            } else {
                r.fail(
                    "ports",
                    format!("http.addr {http} is taken by another program"),
                    format!("stop it (`ss -ltnp 'sport = :{}'` names it) or give Kendali another --http", http.port()),
                );
            }
        }
        Err(e) => r.fail(
            "ports",
            format!("http.addr {http} cannot be bound: {e}"),
            "a port below 1024 needs CAP_NET_BIND_SERVICE (the systemd unit grants it) or a reverse proxy in front",
        ),
    }
    if s.mqtt.url.is_none() {
        let b = s.mqtt.broker_addr;
        match tokio::net::TcpListener::bind(b).await {
            Ok(_) => r.ok("ports", format!("mqtt.broker_addr {b} is free for the embedded broker")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => r.warn(
                "ports",
                format!("mqtt.broker_addr {b} is taken (a running Kendali's embedded broker, or Mosquitto)"),
                "if Mosquitto holds it, point Kendali at it with mqtt.url (--mqtt-url); otherwise give the embedded broker another --broker-addr",
            ),
            Err(e) => r.fail(
                "ports",
                format!("mqtt.broker_addr {b} cannot be bound: {e}"),
                "give the embedded broker another --broker-addr",
            ),
        }
    }
}

async fn broker(s: &Settings, o: &DoctorOptions, r: &mut Report) {
    let url_text = match &s.mqtt.url {
        Some(u) => u.clone(),
        None => {
            r.warn(
                "broker",
                format!(
                    "no mqtt.url: Kendali starts its embedded broker on {}, which keeps no message across a restart",
                    s.mqtt.broker_addr
                ),
                "for a real room run Mosquitto (`kendali broker-config --out DIR` writes its configuration) and set mqtt.url",
            );
            return;
        }
    };
    let url = match BrokerUrl::parse(&url_text) {
        Ok(u) => u,
        Err(e) => {
            r.fail(
                "broker",
                format!("mqtt.url: {e}"),
                "mqtt://HOST:1883 or mqtts://HOST:8883",
            );
            return;
        }
    };
    let options = ConnectOptions {
        client_id: format!("{}-doctor-{}", s.mqtt.client_id, std::process::id()),
        persistent: false,
        manual_acks: false,
        max_packet_bytes: s.mqtt.max_packet_bytes,
        request_capacity: 64,
    };
    let (client, mut events) = match bus::connect(&url, &s.mqtt, &options) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "broker",
                format!("cannot set up a connection to {url_text}: {e}"),
                "check mqtt.tls_* files and mqtt.url",
            );
            return;
        }
    };
    let user = s
        .mqtt
        .username
        .clone()
        .or(url.username.clone())
        .unwrap_or_else(|| "an anonymous client".into());
    let connected = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(BusEvent::Connected { .. }) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    match connected {
        Ok(Ok(())) => r.ok("broker", format!("connected to {url_text} as {user}")),
        Ok(Err(e)) => {
            r.fail(
                "broker",
                format!("cannot connect to {url_text} as {user}: {e}"),
                "is the broker running (`systemctl status mosquitto`)? Does mqtt.username/mqtt.password match a user of its password file, and mqtt.tls_ca its certificate?",
            );
            return;
        }
        Err(_) => {
            r.fail(
                "broker",
                format!("no answer from {url_text} within 5 s"),
                "check the host, the port and the firewall between this server and the broker",
            );
            return;
        }
    }
    // Every family Kendali reads, as ingest subscribes (shared group included).
    let families: Vec<Family> = crate::ingest::connections(&s.mqtt).concat();
    let filters = crate::ingest::filters(&s.mqtt, &families);
    for f in &filters {
        if let Err(e) = client.subscribe(f.clone(), Qos::AtLeastOnce).await {
            r.fail(
                "broker",
                format!("cannot subscribe to {f}: {e}"),
                "see the broker's log",
            );
            return;
        }
    }
    let mut granted = 0;
    let mut refused = false;
    let mut skews: HashMap<Family, Vec<f64>> = HashMap::new();
    // The broker's answers first (at most 5 s), then `listen` of live messages.
    let subacks_by = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut listen_until = None;
    let limits = Limits::default();
    while let Ok(ev) =
        tokio::time::timeout_at(listen_until.unwrap_or(subacks_by), events.poll()).await
    {
        match ev {
            Ok(BusEvent::SubAck { granted: g }) => {
                granted += 1;
                refused |= !g;
                if granted == filters.len() {
                    listen_until = Some(tokio::time::Instant::now() + o.listen);
                }
            }
            Ok(BusEvent::Message(m)) if !m.retain => {
                let now = Utc::now();
                let topic = String::from_utf8_lossy(&m.topic);
                if let Ok((t, msg)) = decode(&topic, &m.payload, &limits, now) {
                    if let Some(ts) = msg.ts() {
                        let skew =
                            (now - ts.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0;
                        skews.entry(t.family()).or_default().push(skew);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                r.fail(
                    "broker",
                    format!("the connection dropped: {e}"),
                    "see the broker's log",
                );
                return;
            }
        }
    }
    if refused {
        r.fail(
            "broker",
            format!("the broker refused a subscription of {}", filters.join(", ")),
            format!("its ACL must let {user} read city/# (the ACL `kendali broker-config --out DIR` writes does)"),
        );
    } else if granted == filters.len() {
        r.ok("broker", format!("subscribed to {}", filters.join(", ")));
    } else {
        r.fail(
            "broker",
            format!(
                "{granted} of {} subscriptions acknowledged within 5 s",
                filters.len()
            ),
            "the broker is overloaded or drops SUBSCRIBE: see its log",
        );
    }
    client.disconnect().await;
    clocks(&skews, o, r);
}

/// The bus's clocks against this machine's: the median of receive time
/// minus the message's own time, per family (transit is milliseconds).
fn clocks(skews: &HashMap<Family, Vec<f64>>, o: &DoctorOptions, r: &mut Report) {
    if skews.is_empty() {
        r.skip(
            "clock",
            format!("no live message in {} s: the publishers' clocks were not compared with this machine's", o.listen.as_secs()),
        );
        return;
    }
    let mut families: Vec<&Family> = skews.keys().collect();
    families.sort_by_key(|f| f.as_str());
    for f in families {
        let mut v = skews[f].clone();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let what = format!(
            "{}: messages arrive {median:+.1} s after their own time (median of {})",
            f.as_str(),
            v.len()
        );
        if median.abs() > 2.0 {
            r.warn(
                "clock",
                what,
                "a clock is off (this server's or the publishers'): run NTP (chrony) on both; a time more than ingest.max_future_s ahead is refused, and a late one ages every freshness",
            );
        } else {
            r.ok("clock", what);
        }
    }
}

/// A Mosquitto configuration's settings, last one winning (as Mosquitto reads them).
fn conf_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some((k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn mosquitto_conf(s: &Settings, o: &DoctorOptions, r: &mut Report) {
    if s.mqtt.url.is_none() {
        return;
    }
    let default = Path::new("/etc/mosquitto/mosquitto.conf");
    let path = match &o.mosquitto_conf {
        Some(p) => p.clone(),
        None if default.exists() => default.to_path_buf(),
        None => {
            r.skip("broker", "no Mosquitto configuration on this machine: its queue settings were not read (--mosquitto-conf FILE)");
            return;
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            r.skip("broker", format!("{}: {e}", path.display()));
            return;
        }
    };
    let mut values = conf_values(&text);
    // Files of include_dir directories, in the order Mosquitto reads them.
    if let Some(dir) = values.get("include_dir").cloned() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(t) = std::fs::read_to_string(&f) {
                values.extend(conf_values(&t));
            }
        }
    }
    let shown = path.display().to_string();
    let num = |k: &str| values.get(k).and_then(|v| v.parse::<u64>().ok());
    let fix = format!("set it as `kendali broker-config` does, in {shown}, and restart Mosquitto");
    match num("max_queued_messages") {
        Some(0) => r.ok("broker", "max_queued_messages 0: a persistent session's queue is unbounded"),
        Some(n) if n >= 100_000 => r.ok("broker", format!("max_queued_messages {n}")),
        n => r.fail(
            "broker",
            format!(
                "max_queued_messages is {} ({shown}): while Kendali is away (a restart, a pause) the broker keeps that many QoS 1 messages of its session and drops the rest, call events included",
                n.map_or("unset (1000)".into(), |n| n.to_string())
            ),
            format!("max_queued_messages 1000000; {fix}"),
        ),
    }
    if values.get("persistence").map(String::as_str) == Some("true") {
        r.ok(
            "broker",
            "persistence true: queued messages survive a broker restart",
        );
    } else {
        r.fail(
            "broker",
            format!("persistence is off ({shown}): a broker restart loses every queued QoS 1 message and Kendali's session"),
            format!("persistence true and a persistence_location; {fix}"),
        );
    }
    let need = s.ingest.max_payload_bytes + crate::config::PACKET_OVERHEAD;
    match num("max_packet_size") {
        Some(n) if n > 0 && (n as usize) > s.mqtt.max_packet_bytes => r.warn(
            "broker",
            format!("max_packet_size {n} is above mqtt.max_packet_bytes {}: a message between them closes Kendali's connection instead of reaching the dead-letter", s.mqtt.max_packet_bytes),
            format!("make them equal (max_packet_size {}); {fix}", s.mqtt.max_packet_bytes),
        ),
        Some(n) if n > 0 && (n as usize) < need => r.warn(
            "broker",
            format!("max_packet_size {n} is below ingest.max_payload_bytes plus headers ({need}): the broker refuses what Kendali would accept"),
            format!("max_packet_size {}; {fix}", s.mqtt.max_packet_bytes),
        ),
        Some(n) if n > 0 => r.ok("broker", format!("max_packet_size {n}")),
        _ => r.warn(
            "broker",
            format!("no max_packet_size ({shown}): a 256-MiB message can reach Kendali"),
            format!("max_packet_size {}; {fix}", s.mqtt.max_packet_bytes),
        ),
    }
}

async fn database(s: &Settings, r: &mut Report) {
    let Some(url) = &s.database.url else {
        r.warn(
            "database",
            "no database.url: history is kept in memory only, and users, sessions and the audit last one run",
            "set database.url (README, \"The database\")",
        );
        return;
    };
    let pool = match crate::store::postgres::open_pool(url, 2) {
        Ok(p) => p,
        Err(e) => {
            r.fail(
                "database",
                format!("database.url: {e}"),
                "postgres://USER@HOST:5432/DB",
            );
            return;
        }
    };
    let client = match pool.get().await {
        Ok(c) => c,
        Err(e) => {
            let e = crate::store::StoreError::from(e);
            r.fail(
                "database",
                format!("cannot connect: {e}"),
                "is PostgreSQL running and reachable (pg_hba.conf, the firewall)? Are the user, password and database of database.url right?",
            );
            return;
        }
    };
    let one = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await }
    };
    match one("SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_user::text, current_database()::text").await {
        Ok(row) => {
            let (num, version, user, db): (i32, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if num >= 150_000 {
                r.ok("database", format!("PostgreSQL {version}, database {db} as {user}"));
            } else {
                r.fail(
                    "database",
                    format!("PostgreSQL {version}: Kendali needs 15 or later"),
                    "upgrade PostgreSQL (pg_upgrade), or point database.url at a 15+ server",
                );
            }
        }
        Err(e) => {
            r.fail("database", format!("cannot read the server's version: {e}"), "check the role's rights to connect");
            return;
        }
    }
    migrations(&client, r).await;
    privileges(&client, r).await;
    timescale(&pool, &client, r).await;
}

async fn migrations(client: &deadpool_postgres::Client, r: &mut Report) {
    let latest = crate::store::postgres::latest_migration();
    let applied = client
        .query_opt(
            "SELECT max(version)::bigint FROM refinery_schema_history",
            &[],
        )
        .await;
    match applied {
        Ok(row) => {
            let applied: Option<i64> = row.and_then(|r| r.get(0));
            match applied {
                Some(v) if v == latest => r.ok("database", format!("schema at version {v}, this binary's")),
                Some(v) if v > latest => r.fail(
                    "database",
                    format!("schema at version {v}, newer than this binary's {latest}"),
                    "run the newer Kendali that migrated it (this one would misread its tables)",
                ),
                v => r.fail(
                    "database",
                    format!("schema at version {}, this binary's is {latest}", v.unwrap_or(0)),
                    "run `kendali migrate --database-url URL` (Kendali also migrates at start, with a role that may create tables)",
                ),
            }
        }
        Err(_) => r.fail(
            "database",
            format!("no schema yet (this binary's is version {latest})"),
            "run `kendali migrate --database-url URL` (Kendali also migrates at start)",
        ),
    }
}

async fn privileges(client: &deadpool_postgres::Client, r: &mut Report) {
    if let Ok(row) = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
    {
        if row.get::<_, bool>(0) {
            r.warn(
                "database",
                "Kendali connects as a superuser, which can switch the audit's append-only triggers off",
                "create a role of its own that owns the database (README, \"The database\") and use it in database.url",
            );
        }
    }
    let audit = client
        .query_one(
            "SELECT to_regclass('audit') IS NOT NULL, \
                    (SELECT count(*) FROM pg_trigger \
                      WHERE tgrelid = to_regclass('audit') AND tgenabled <> 'D' \
                        AND tgname IN ('audit_no_change', 'audit_no_truncate')), \
                    CASE WHEN to_regclass('audit') IS NULL THEN false \
                         ELSE has_table_privilege('audit', 'UPDATE') END",
            &[],
        )
        .await;
    match audit {
        Ok(row) => {
            let (exists, triggers, may_update): (bool, i64, bool) =
                (row.get(0), row.get(1), row.get(2));
            if !exists {
                return;
            }
            if triggers == 2 {
                r.ok("database", "the audit is append-only (its triggers are on)");
            } else {
                r.fail(
                    "database",
                    "the audit's append-only triggers are missing or disabled: its rows can be changed unseen",
                    "ALTER TABLE audit ENABLE TRIGGER audit_no_change, ENABLE TRIGGER audit_no_truncate; then `kendali audit verify`",
                );
            }
            if may_update {
                r.warn(
                    "database",
                    "Kendali's role may UPDATE audit rows (the triggers still refuse it)",
                    "REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM <the role>",
                );
            }
        }
        Err(e) => r.warn(
            "database",
            format!("cannot read the audit's protection: {e}"),
            "check the role's rights",
        ),
    }
}

async fn timescale(
    pool: &deadpool_postgres::Pool,
    client: &deadpool_postgres::Client,
    r: &mut Report,
) {
    let row = client
        .query_opt(
            "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        )
        .await;
    let (available, installed): (bool, Option<String>) = match row {
        Ok(Some(row)) => (true, row.get(1)),
        Ok(None) => (false, None),
        Err(e) => {
            r.warn(
                "database",
                format!("cannot read the extensions: {e}"),
                "check the role's rights",
            );
            return;
        }
    };
    let preloaded = client
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .map(|row| row.get::<_, String>(0).contains("timescaledb"))
        .unwrap_or(false);
    match (available, installed) {
        (false, _) => r.ok("database", "plain PostgreSQL (no TimescaleDB): Kendali keeps its own rollups and retention"),
        (true, None) if !preloaded => r.warn(
            "database",
            "TimescaleDB is installed on the server but not preloaded: Kendali runs on plain PostgreSQL",
            "shared_preload_libraries = 'timescaledb' in postgresql.conf, restart PostgreSQL; Kendali enables the extension at its next start",
        ),
        (true, None) => r.ok("database", "TimescaleDB available, not yet enabled: Kendali enables it at its next start"),
        (true, Some(v)) if !preloaded => r.fail(
            "database",
            format!("TimescaleDB {v} is enabled in the database but not preloaded: its tables and jobs do not work"),
            "shared_preload_libraries = 'timescaledb' in postgresql.conf, restart PostgreSQL",
        ),
        (true, Some(v)) => {
            r.ok("database", format!("TimescaleDB {v}"));
            match crate::store::timescale::failed_jobs(pool).await {
                Ok(jobs) if jobs.is_empty() => r.ok("database", "no TimescaleDB background job has failed"),
                Ok(jobs) => {
                    for j in jobs {
                        r.warn(
                            "database",
                            format!(
                                "TimescaleDB job {} ({}{}) failed {} times: {}",
                                j.job_id,
                                j.proc_name,
                                j.hypertable.map(|h| format!(" on {h}")).unwrap_or_default(),
                                j.failures,
                                j.error.unwrap_or_else(|| "no message kept".into())
                            ),
                            format!(
                                "SELECT * FROM timescaledb_information.job_errors WHERE job_id = {id}; once the cause is fixed, CALL run_job({id})",
                                id = j.job_id
                            ),
                        );
                    }
                }
                Err(e) => r.warn("database", format!("cannot read TimescaleDB's jobs: {e}"), "check the role's rights on timescaledb_information"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_setting_of_a_mosquitto_file_wins_and_comments_do_not_count() {
        let v = conf_values(
            "# max_queued_messages 5\nmax_queued_messages 1000\npersistence true\n\nmax_queued_messages 0\n",
        );
        assert_eq!(v["max_queued_messages"], "0");
        assert_eq!(v["persistence"], "true");
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn a_failed_check_fails_the_report_and_every_fix_is_printed() {
        let mut r = Report::default();
        r.ok("ports", "free");
        r.warn("broker", "w", "do this");
        assert!(!r.failed());
        r.fail("database", "down", "start it");
        assert!(r.failed());
        let text = r.render();
        assert!(text.contains("FAIL database  down"), "{text}");
        assert!(text.contains("fix: start it"), "{text}");
        assert!(text.ends_with("3 checks: 1 failed, 1 warnings\n"), "{text}");
    }
}
