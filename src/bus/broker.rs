//! The embedded MQTT broker (rumqttd) for the one-command start: with no
//! external broker configured, Kendali listens on `broker_addr` itself so that
//! the simulator, `mosquitto_pub` and service apps all have a bus to talk to.
//! It is for the one-command start, demos and development: production rooms
//! run Mosquitto (`kendali broker-config`; README, "The embedded broker").

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::MqttSettings;

/// The Mosquitto configuration we recommend for production, for the default
/// settings; [`mosquitto_conf`] fits it to the configured ones.
pub const MOSQUITTO_PRODUCTION_CONF: &str = include_str!("mosquitto.conf");

/// The Mosquitto ACL we ship for production (`acl_file`): one user per kind
/// of publisher, each allowed only its own topics (its header says who may
/// do what, and how to create the users).
pub const MOSQUITTO_ACL: &str = include_str!("mosquitto.acl");

/// The production configuration for these settings (`kendali broker-config`):
/// its `max_packet_size` is `mqtt.max_packet_bytes`, so that the broker never
/// passes Kendali a packet it cannot read.
pub fn mosquitto_conf(mqtt: &MqttSettings) -> String {
    let mut conf = String::with_capacity(MOSQUITTO_PRODUCTION_CONF.len());
    for line in MOSQUITTO_PRODUCTION_CONF.lines() {
        if line.starts_with("max_packet_size ") {
            conf.push_str(&format!("max_packet_size {}\n", mqtt.max_packet_bytes));
        } else {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    conf
}

/// The production configuration whose `password_file` and `acl_file` name
/// these files instead of /etc/mosquitto/passwd and /etc/mosquitto/acl.
pub fn mosquitto_conf_with_files(mqtt: &MqttSettings, passwd: &Path, acl: &Path) -> String {
    rewrite(&mosquitto_conf(mqtt), |l| {
        if l.starts_with("password_file ") {
            Some(format!("password_file {}", passwd.display()))
        } else if l.starts_with("acl_file ") {
            Some(format!("acl_file {}", acl.display()))
        } else {
            None
        }
    })
}

/// What `kendali broker-config --out DIR` wrote.
#[derive(Debug)]
pub struct BrokerFiles {
    /// DIR/mosquitto.conf, naming `passwd` and `acl`.
    pub conf: PathBuf,
    /// DIR/acl: [`MOSQUITTO_ACL`].
    pub acl: PathBuf,
    /// DIR/passwd: not written; the operator creates it with mosquitto_passwd.
    pub passwd: PathBuf,
}

/// Writes the production configuration (for these settings) and the ACL into
/// `dir` (created if missing): `dir/mosquitto.conf`, whose `password_file` and
/// `acl_file` name `dir/passwd` and `dir/acl` by absolute path, and `dir/acl`.
/// The password file is left to the operator (mosquitto_passwd); until it
/// exists Mosquitto refuses to start, rather than run without accounts. An
/// existing configuration or ACL (perhaps edited: gateways, the simulator's
/// user) is overwritten only with `overwrite`.
pub fn write_mosquitto_files(
    mqtt: &MqttSettings,
    dir: &Path,
    overwrite: bool,
) -> std::io::Result<BrokerFiles> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let files = BrokerFiles {
        conf: dir.join("mosquitto.conf"),
        acl: dir.join("acl"),
        passwd: dir.join("passwd"),
    };
    if !overwrite {
        for p in [&files.conf, &files.acl] {
            if p.exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists (it may hold local edits); --force overwrites it",
                        p.display()
                    ),
                ));
            }
        }
    }
    std::fs::write(&files.acl, MOSQUITTO_ACL)?;
    std::fs::write(
        &files.conf,
        mosquitto_conf_with_files(mqtt, &files.passwd, &files.acl),
    )?;
    Ok(files)
}

impl std::fmt::Display for BrokerFiles {
    /// What was written and what the operator does next.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (conf, acl, pw) = (
            self.conf.display(),
            self.acl.display(),
            self.passwd.display(),
        );
        writeln!(f, "wrote {conf}")?;
        writeln!(f, "wrote {acl}")?;
        writeln!(
            f,
            "Next, create the users (the ACL's header says who may publish what):"
        )?;
        writeln!(
            f,
            "  mosquitto_passwd -c {pw} kendali     # then set mqtt.username and mqtt.password"
        )?;
        writeln!(f, "  mosquitto_passwd {pw} callcentre")?;
        writeln!(
            f,
            "  mosquitto_passwd {pw} INTERSECTION_ID  # each ATCS controller"
        )?;
        writeln!(
            f,
            "  mosquitto_passwd {pw} SERVICE_ID       # each service application"
        )?;
        writeln!(
            f,
            "  mosquitto_passwd {pw} UNIT_ID          # each field unit"
        )?;
        writeln!(
            f,
            "make both files readable by Mosquitto's user (chown mosquitto: {pw} {acl}),"
        )?;
        writeln!(f, "and start it with: mosquitto -c {conf}")
    }
}

/// `conf` with each line that `f` returns a replacement for replaced (and
/// dropped when the replacement is empty).
fn rewrite(conf: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(conf.len());
    for line in conf.lines() {
        match f(line.trim_start()) {
            Some(r) if r.is_empty() => {}
            Some(r) => {
                out.push_str(&r);
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The production configuration for a private local Mosquitto (the bench and
/// the tests): listening on 127.0.0.1:`port`, persisting into `dir`, anonymous
/// (loopback only: no password file, no ACL), staying root. Every queueing and
/// persistence value is kept.
pub fn mosquitto_local_conf(port: u16, dir: &Path) -> String {
    let conf = local(&mosquitto_conf(&MqttSettings::default()), port, dir, |l| {
        ["allow_anonymous ", "password_file ", "acl_file "]
            .iter()
            .any(|k| l.starts_with(k))
            .then(String::new)
    });
    conf + "allow_anonymous true\n"
}

/// The production configuration for a private local Mosquitto with the
/// production accounts (the ACL's tests): as [`mosquitto_local_conf`], but
/// anonymous clients refused and `password_file` and `acl_file` naming these
/// files.
pub fn mosquitto_local_conf_with_accounts(
    port: u16,
    dir: &Path,
    passwd: &Path,
    acl: &Path,
) -> String {
    let conf = mosquitto_conf_with_files(&MqttSettings::default(), passwd, acl);
    local(&conf, port, dir, |_| None)
}

fn local(
    conf: &str,
    port: u16,
    dir: &Path,
    mut more: impl FnMut(&str) -> Option<String>,
) -> String {
    let conf = rewrite(conf, |l| {
        if l.starts_with("listener ") {
            Some(format!("listener {port} 127.0.0.1"))
        } else if l.starts_with("persistence_location ") {
            Some(format!("persistence_location {}/", dir.display()))
        } else {
            more(l)
        }
    });
    conf + "user root\n"
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "the embedded MQTT broker cannot listen on {addr}. Choose another address with \
         --broker-addr (or KENDALI_BROKER_ADDR), or use an existing broker with --mqtt-url (or KENDALI_MQTT_URL)"
    )]
    AddrInUse {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded broker configuration: {0}")]
    Config(String),
    #[error("the embedded broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// The broker's compiled-in configuration.
///
/// - `max_payload_size` (the largest packet, as rumqttc counts it: the
///   remaining length) is Kendali's own `mqtt.max_packet_bytes`, so that
///   whatever the broker takes Kendali can read, and an oversize payload
///   reaches the dead-letter.
/// - Memory: rumqttd keeps each subscription filter's messages in a log of
///   `max_segment_count` segments of `max_segment_size` bytes, dropping the
///   oldest segment when full, and never trims it otherwise: its defaults
///   here were 10 x 100 MB, and after a flood the broker held about 1 GB
///   that it never gave back. Now a filter keeps at most 16 MB (4 x 4 MB),
///   the call events' 64 MB (about 200,000 of them). A subscriber that
///   falls further behind than its log loses the oldest messages: the
///   embedded broker has no persistence and is for the one-command start,
///   demos and development; production runs Mosquitto (`kendali
///   broker-config`), which queues for an absent Kendali on disk.
/// - rumqttd lets a subscriber only 100 unacknowledged QoS 1 messages (a
///   constant of its router): Kendali acknowledges call events as soon as
///   they are stored, not on the store's timer, so that window is not the
///   limit (see `store::StoreTask`).
const CONFIG_TEMPLATE: &str = r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 4194304
max_segment_count = 4
    [router.custom_segment.'city/+/calls/+']
    max_segment_size = 16777216
    max_segment_count = 4

[v4.1]
name = "v4-1"
listen = "LISTEN"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = MAX_PACKET
    max_inflight_count = 10000
    dynamic_filters = true
"#;

/// Starts the broker on its own threads (rumqttd runs its own runtimes) and
/// waits until it accepts connections.
pub fn start(addr: SocketAddr, max_packet_bytes: usize) -> Result<(), BrokerError> {
    // rumqttd only logs a bind failure from inside its thread; check first so
    // the operator gets a clear message and a non-zero exit.
    drop(TcpListener::bind(addr).map_err(|source| BrokerError::AddrInUse { addr, source })?);
    let config: rumqttd::Config = toml::from_str(
        &CONFIG_TEMPLATE
            .replace("LISTEN", &addr.to_string())
            .replace("MAX_PACKET", &max_packet_bytes.to_string()),
    )
    .map_err(|e| BrokerError::Config(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "embedded MQTT broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{MessageKind, Topic};

    /// The ACL's rules (comments and blank lines aside), as (user, verb, access, topic).
    fn rules() -> Vec<(Option<String>, String, String, String)> {
        let mut user = None;
        let mut out = Vec::new();
        for line in MOSQUITTO_ACL.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut w = line.split(' ');
            match (w.next(), w.next(), w.next(), w.next()) {
                (Some("user"), Some(u), None, None) => user = Some(u.to_owned()),
                (Some(verb @ ("topic" | "pattern")), Some(access), Some(topic), None) => {
                    out.push((user.clone(), verb.into(), access.into(), topic.into()))
                }
                _ => panic!("an ACL line Mosquitto would misread: {line:?}"),
            }
        }
        out
    }

    /// A topic of the ACL with its wildcards (`%u`, `+`) given values.
    fn instance(topic: &str, id: &str) -> Topic {
        let t = topic
            .replace("%u", id)
            .replace("/calls/+", "/calls/112")
            .replace("city/+/", "city/cilegon/")
            .replace('+', "x");
        Topic::parse(&t).unwrap_or_else(|e| panic!("{topic}: {e}"))
    }

    #[test]
    fn the_acl_grants_contract_topics_and_each_self_publisher_its_own() {
        let rules = rules();
        let kinds = |verb: &str, access: &str, user: Option<&str>| {
            let mut k: Vec<MessageKind> = rules
                .iter()
                .filter(|r| r.1 == verb && r.2 == access && r.0.as_deref() == user)
                .map(|r| instance(&r.3, "simpang-pci").kind())
                .collect();
            k.sort();
            k
        };
        // Patterns: what an intersection, a service or a unit publishes, and
        // the commands a controller reads, each under its own id.
        let mut publishers = vec![
            MessageKind::IntersectionState,
            MessageKind::IntersectionInfo,
            MessageKind::CommandAck,
            MessageKind::AppEvent,
            MessageKind::KpiSample,
            MessageKind::UnitStatus,
        ];
        publishers.sort();
        assert_eq!(kinds("pattern", "write", None), publishers);
        assert_eq!(
            kinds("pattern", "read", None),
            vec![MessageKind::Command, MessageKind::UnitAssignment]
        );
        for r in rules.iter().filter(|r| r.1 == "pattern") {
            assert!(r.3.contains("/%u"), "{r:?} is not bound to the username");
        }
        // Kendali publishes what its people do: commands to controllers, call
        // events from the dispatcher console, orders to units, and its alerts'
        // transitions; and relays what applications send it over HTTP. The
        // call centre publishes call events only.
        assert_eq!(
            kinds("topic", "write", Some("kendali")),
            vec![
                MessageKind::Command,
                MessageKind::CallEvent,
                MessageKind::UnitAssignment,
                MessageKind::AppEvent,
                MessageKind::KpiSample,
                MessageKind::Alert
            ]
        );
        assert_eq!(
            kinds("topic", "write", Some("callcentre")),
            vec![MessageKind::CallEvent]
        );
        // Every named user is kept from the patterns under its own name.
        for user in ["kendali", "callcentre"] {
            let deny = format!("city/+/+/{user}/#");
            assert!(
                rules
                    .iter()
                    .any(|r| r.0.as_deref() == Some(user) && r.2 == "deny" && r.3 == deny),
                "{user} has no `topic deny {deny}`"
            );
        }
    }

    #[test]
    fn broker_config_out_writes_a_conf_naming_its_acl_and_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mosquitto");
        let mqtt = MqttSettings {
            max_packet_bytes: 2_000_000,
            ..MqttSettings::default()
        };
        let files = write_mosquitto_files(&mqtt, &out, false).unwrap();
        let conf = std::fs::read_to_string(&files.conf).unwrap();
        let out = out.canonicalize().unwrap();
        let lines = |key: &str| {
            conf.lines()
                .filter(|l| l.starts_with(key))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines("password_file "),
            [format!("password_file {}", out.join("passwd").display())]
        );
        assert_eq!(
            lines("acl_file "),
            [format!("acl_file {}", out.join("acl").display())]
        );
        assert_eq!(lines("allow_anonymous "), ["allow_anonymous false"]);
        assert_eq!(lines("max_packet_size "), ["max_packet_size 2000000"]);
        assert_eq!(std::fs::read_to_string(&files.acl).unwrap(), MOSQUITTO_ACL);
        assert!(
            !files.passwd.exists(),
            "the password file is the operator's"
        );
        // A second run keeps local edits unless told otherwise.
        std::fs::write(&files.acl, "user edited\n").unwrap();
        let e = write_mosquitto_files(&mqtt, &out, false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&files.acl).unwrap(),
            "user edited\n"
        );
        write_mosquitto_files(&mqtt, &out, true).unwrap();
        assert_eq!(std::fs::read_to_string(&files.acl).unwrap(), MOSQUITTO_ACL);
    }

    #[test]
    fn the_local_confs_keep_or_drop_the_accounts() {
        let dir = Path::new("/tmp/x");
        let rules = |conf: &str| {
            conf.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        };
        let anon = rules(&mosquitto_local_conf(1999, dir));
        assert!(anon.contains("listener 1999 127.0.0.1\n"));
        assert!(anon.contains("allow_anonymous true\n"));
        for key in ["allow_anonymous false", "password_file", "acl_file"] {
            assert!(!anon.contains(key), "{key} in\n{anon}");
        }
        let acct = rules(&mosquitto_local_conf_with_accounts(
            1999,
            dir,
            Path::new("/tmp/x/passwd"),
            Path::new("/tmp/x/acl"),
        ));
        assert!(acct.contains("listener 1999 127.0.0.1\n"));
        assert!(acct.contains("persistence_location /tmp/x/\n"));
        for line in [
            "allow_anonymous false\n",
            "password_file /tmp/x/passwd\n",
            "acl_file /tmp/x/acl\n",
            "user root\n",
        ] {
            assert_eq!(acct.matches(line).count(), 1, "{line} in\n{acct}");
        }
        assert!(!acct.contains("allow_anonymous true"));
    }
}
