//! The `kendali` command line: parse, load settings, call the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kendali::config::Settings;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Kendali: the real-time city operations room (ATCS, 112/119, field units, city services).
#[derive(Parser)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KENDALI_COMMIT"), ")"),
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Settings file (TOML); default: ./kendali.toml if present.
    #[arg(long, env = "KENDALI_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the room: ingest, live state, screens (the default).
    Serve(ServeArgs),
    /// Run the simulated city alone against a broker.
    Simulate(SimulateArgs),
    /// Validate one contract message and publish it (for app teams integrating with the bus).
    Publish(PublishArgs),
    /// Print or write the JSON Schemas of the bus contract.
    Schemas(SchemasArgs),
    /// Apply the database migrations (also done at start-up).
    Migrate(MigrateArgs),
    /// Print the recommended Mosquitto configuration for production (--out: write it and its ACL).
    BrokerConfig(BrokerConfigArgs),
    /// Manage the people who may sign in (stored in the database).
    #[command(subcommand)]
    Users(UsersCmd),
    /// Manage the wall displays' tokens.
    #[command(subcommand)]
    Displays(DisplaysCmd),
    /// Manage the tokens of service applications that publish over HTTP.
    #[command(subcommand)]
    Apps(AppsCmd),
    /// Check the audit's hash chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Measure the room end to end under load (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Write a city's shift handover report (printable HTML) from the database.
    Report(ReportArgs),
    /// Check the installation (ports, broker, database, clocks), each problem with its fix.
    Doctor(DoctorArgs),
    /// A real city's map: import its districts and roads (GeoJSON).
    #[command(subcommand)]
    City(CityCmd),
    /// The nodes of a shared group that stored telemetry (`mqtt.shared_group`).
    #[command(subcommand)]
    Nodes(NodesCmd),
}

#[derive(Subcommand)]
enum NodesCmd {
    /// List them: client id, rollup watermark, retired or not.
    List {
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Take a node out of the group for good: add the rows it stored to the
    /// per-minute rollup and stop its watermark holding history back.
    Forget {
        /// Its `mqtt.client_id`.
        client_id: String,
        /// Even if it added to the rollup in the last 2 minutes (it looks alive).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Subcommand)]
enum CityCmd {
    /// Check, simplify and store a city's districts (polygons) and roads
    /// (lines) from GeoJSON, as its GIS office or an OpenStreetMap export
    /// gives them, with its time zone and service catalogue (from a city
    /// file); the wall's map, the consoles, the services screens and the
    /// unit router use them when no simulated city runs (at Kendali's next
    /// start).
    Import {
        /// A city file (TOML): slug, name, time_zone, districts, roads and
        /// the service catalogue (see README, "A real city").
        #[arg(long, conflicts_with_all = ["city", "name", "districts", "roads", "time_zone"])]
        file: Option<PathBuf>,
        /// The city's slug.
        #[arg(long, required_unless_present = "file")]
        city: Option<String>,
        /// Its name on the screens (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Its local time: WIB, WITA or WIT (default: WIB).
        #[arg(long)]
        time_zone: Option<String>,
        /// Districts: a FeatureCollection of Polygons or MultiPolygons, each with a `name`.
        #[arg(long, required_unless_present = "file")]
        districts: Option<PathBuf>,
        /// Roads: a FeatureCollection of LineStrings or MultiLineStrings.
        #[arg(long, required_unless_present = "file")]
        roads: Option<PathBuf>,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The local Mosquitto's configuration, for its queue settings (default:
    /// /etc/mosquitto/mosquitto.conf when it exists).
    #[arg(long)]
    mosquitto_conf: Option<PathBuf>,
    /// Seconds to listen to the bus, for the publishers' clocks.
    #[arg(long, default_value_t = 5)]
    listen_s: u64,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// The city's slug.
    #[arg(long)]
    city: String,
    /// The shift's start (RFC 3339, e.g. 2026-12-05T07:00:00+07:00).
    #[arg(long)]
    from: chrono::DateTime<chrono::FixedOffset>,
    /// The shift's end (RFC 3339).
    #[arg(long)]
    to: chrono::DateTime<chrono::FixedOffset>,
    /// Write the page here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `id` (Bahasa Indonesia) or `en`.
    #[arg(long, default_value = "id")]
    lang: String,
    /// The figures as JSON instead of the page.
    #[arg(long)]
    json: bool,
    /// PostgreSQL URL (default: database.url of the settings).
    #[arg(long, env = "KENDALI_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// `mosquitto` (a private one with the shipped production config), `embedded`, or an mqtt:// URL.
    #[arg(long, default_value = "mosquitto")]
    broker: String,
    /// PostgreSQL URL allowed to create databases (the bench makes and drops its own).
    #[arg(
        long,
        env = "KENDALI_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Telemetry rates to step through, ATCS state messages per second.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,25000,50000,60000,70000,80000,90000"
    )]
    rates: Vec<f64>,
    #[arg(long, default_value_t = 2000)]
    intersections: usize,
    /// Call events per second.
    #[arg(long, default_value_t = 50.0)]
    call_rate: f64,
    /// Websocket screens (plus one that measures telemetry latency).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    #[arg(long, default_value_t = 5)]
    warmup_s: u64,
    /// Screens of the memory check (2,000 intersections); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    memory_clients: usize,
    /// Messages of the baselines (relay rate, `psql \copy`).
    #[arg(long, default_value_t = 200_000)]
    baseline_messages: usize,
    #[arg(long, default_value_t = 2)]
    publisher_connections: usize,
    /// The measuring screen follows one intersection in this many (1: all).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    telemetry_sample: u32,
    /// Steps added to --rates, each halfway between the highest sustainable
    /// step and the lowest one above it that was not (each halves that gap,
    /// down to 2,000 msg/s; 0: only --rates). They run as soon as a step
    /// fails, before the higher --rates.
    #[arg(long, default_value_t = 3)]
    refine: usize,
    /// The Kendali binary to measure (default: this one), e.g. another build,
    /// or a script that runs it under a profiler.
    #[arg(long, env = "KENDALI_BENCH_EXE")]
    kendali_exe: Option<PathBuf>,
    /// Kendali nodes sharing the bus and the database (`mqtt.shared_group`);
    /// the screens watch the first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    nodes: u16,
    /// Where the JSON and markdown reports go.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Kendali's web address during the run (default: a free port); pin it to
    /// watch the wall in a browser while the bench runs (`.ci/wall-soak`).
    #[arg(long)]
    http: Option<std::net::SocketAddr>,
    /// Only measure Kendali's own CPU per message (decode, apply to the live
    /// state, encode the updates) for this many messages, in one thread with
    /// nothing beside it (repeatable where the end-to-end steps are noisy);
    /// prints JSON.
    #[arg(long)]
    stage_cost: Option<usize>,
}

/// Where the directory is: `--database-url`, else the settings' `database.url`.
#[derive(Args)]
struct DirArgs {
    /// PostgreSQL URL (default: the settings' database.url).
    #[arg(long, env = "KENDALI_DATABASE_URL", global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        /// A role: wall, operator, dispatcher, traffic_officer, supervisor, admin (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Cities a traffic officer may act in (repeatable; none: every city).
        #[arg(long = "city")]
        cities: Vec<String>,
        /// Districts a traffic officer may act in, comma-separated.
        #[arg(long, value_delimiter = ',')]
        districts: Vec<String>,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List the users.
    List {
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Disable a user and end their sessions.
    Disable {
        name: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Enable a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Set a new password (from standard input) and end the user's sessions.
    ResetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Subcommand)]
enum DisplaysCmd {
    /// Add a wall display and print its token (shown once).
    Add {
        name: String,
        /// The wall layout it opens (`1080p`, `4k`, `4x2`...).
        #[arg(long, default_value = "1080p")]
        layout: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List the displays.
    List {
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Revoke a display's token and end its sessions.
    Revoke {
        name: String,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Subcommand)]
enum AppsCmd {
    /// Make a token for a service application of a city and print it (shown
    /// once). It publishes only that service's events and KPIs, over
    /// `POST /api/ingest/{city}/apps/{service}/events` and `/api/ingest/{city}/kpi/{service}`.
    Add {
        /// The service's id, as in its topics (e.g. `perizinan`).
        service: String,
        /// The city's slug.
        #[arg(long)]
        city: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List the tokens (never the tokens themselves: their ids).
    List {
        /// Only this city's.
        #[arg(long)]
        city: Option<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Revoke a service application's tokens (or only the one named by --id).
    Revoke {
        service: String,
        #[arg(long)]
        city: String,
        /// Only this token (its id, from `kendali apps list`).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the hash chain; name the first row that does not match.
    Verify {
        /// Only rows at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only rows before this time (RFC 3339).
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Args)]
struct BrokerConfigArgs {
    /// Write DIR/mosquitto.conf (naming DIR/passwd and DIR/acl) and DIR/acl,
    /// the ACL with one user per kind of publisher, instead of printing the configuration.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With --out: overwrite an existing DIR/mosquitto.conf or DIR/acl.
    #[arg(long, requires = "out")]
    force: bool,
}

#[derive(Args)]
struct MigrateArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "KENDALI_DATABASE_URL")]
    database_url: String,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Web server address.
    #[arg(long = "http", env = "KENDALI_HTTP_ADDR")]
    http: Option<std::net::SocketAddr>,
    /// External MQTT broker (mqtt://host:port or mqtts://); unset starts the embedded broker.
    #[arg(long, env = "KENDALI_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Listen address of the embedded broker.
    #[arg(long, env = "KENDALI_BROKER_ADDR")]
    broker_addr: Option<std::net::SocketAddr>,
    /// PostgreSQL URL; unset keeps history in bounded memory only.
    #[arg(long, env = "KENDALI_DATABASE_URL")]
    database_url: Option<String>,
    /// Scenario of the in-process simulated city (built-in name or file).
    #[arg(long, env = "KENDALI_SCENARIO")]
    scenario: Option<String>,
    /// Run without the simulated city (production). Same as KENDALI_SIMULATE=false.
    #[arg(long)]
    no_sim: bool,
    /// The simulated city's calls wait for people at /dispatch, and its units for their assignments.
    #[arg(long)]
    human_dispatch: bool,
}

#[derive(Args)]
struct SimulateArgs {
    /// Built-in scenario name or scenario file.
    #[arg(long, env = "KENDALI_SCENARIO", default_value = "cilegon-weekday")]
    scenario: String,
    #[arg(
        long,
        env = "KENDALI_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    mqtt_url: String,
    /// Seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Time acceleration (default: the scenario's), e.g. 1440 runs a day in a minute.
    #[arg(long)]
    accel: Option<f64>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_s: Option<u64>,
    #[arg(long, default_value = "kendali-simulator")]
    client_id: String,
    /// Calls wait for people at a console, and units for their assignments.
    #[arg(long)]
    human_dispatch: bool,
}

#[derive(Args)]
struct PublishArgs {
    /// Contract topic, e.g. city/cilegon/calls/112.
    topic: String,
    /// The JSON payload; `@FILE` reads it from a file, `-` from standard input.
    payload: String,
    #[arg(
        long,
        env = "KENDALI_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    mqtt_url: String,
    /// Validate only; do not publish.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct SchemasArgs {
    /// Write every schema into src/contract/schemas/ under this repository root.
    #[arg(long, value_name = "REPO_ROOT")]
    write: Option<PathBuf>,
    /// Print the schema of one kind (e.g. call_event).
    #[arg(long)]
    kind: Option<String>,
}

fn env_false(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        })
        .unwrap_or(false)
}

fn settings_for(config: Option<&std::path::Path>, a: ServeArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::load(config)?;
    if let Some(v) = a.http {
        s.http.addr = v;
    }
    if let Some(v) = a.mqtt_url {
        s.mqtt.url = Some(v);
    }
    if let Some(v) = a.broker_addr {
        s.mqtt.broker_addr = v;
    }
    if let Some(v) = a.database_url {
        s.database.url = Some(v);
    }
    if let Some(v) = a.scenario {
        s.sim.scenario = v;
    }
    if a.no_sim || env_false("KENDALI_SIMULATE") {
        s.sim.enabled = false;
    }
    if a.human_dispatch {
        s.sim.human_dispatch = true;
    }
    s.validate()?;
    Ok(s)
}

/// Logs: on standard output for the server (its log is its output), on
/// standard error for the tools, whose output is what they print (a
/// report, a schema, JSON).
fn init_logs(serving: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,rumqttd=warn,rumqttd::server::broker=off,rumqttc=warn,actix_server=warn".into()
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if serving {
        logs.init();
    } else {
        logs.with_writer(std::io::stderr).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(matches!(cli.command, None | Some(Cmd::Serve(_))));
    let config = cli.config;
    // Serving reads its settings before the runtime starts: they size it.
    let job = match cli.command {
        None => settings_for(config.as_deref(), cli.serve).map(Job::Serve),
        Some(Cmd::Serve(a)) => settings_for(config.as_deref(), a).map(Job::Serve),
        Some(cmd) => Ok(Job::Other(cmd)),
    };
    let job = match job {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Job::Serve(s) = &job {
        if s.runtime.worker_threads > 0 {
            builder.worker_threads(s.runtime.worker_threads);
        }
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match job {
        Job::Serve(s) => rt.block_on(serve(s)),
        Job::Other(cmd) => rt.block_on(run(config.as_deref(), cmd)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asks for.
#[allow(clippy::large_enum_variant)] // one value, made once at start-up
enum Job {
    Serve(Settings),
    Other(Cmd),
}

async fn run(config: Option<&std::path::Path>, cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Serve(a) => serve(settings_for(config, a)?).await,
        Cmd::Simulate(a) => simulate(config, a).await,
        Cmd::Publish(a) => publish(a).await,
        Cmd::Schemas(a) => schemas(a),
        Cmd::Migrate(a) => {
            let applied = kendali::store::postgres::migrate(&a.database_url).await?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for m in applied {
                println!("applied {m}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(a) => bench(a).await,
        Cmd::Users(c) => users(config, c).await,
        Cmd::Displays(c) => displays(config, c).await,
        Cmd::Apps(c) => apps(config, c).await,
        Cmd::Doctor(a) => doctor(config, a).await,
        Cmd::City(c) => city(config, c).await,
        Cmd::Nodes(c) => nodes(config, c).await,
        Cmd::Audit(c) => audit(config, c).await,
        Cmd::Report(a) => report(config, a).await,
        Cmd::BrokerConfig(a) => {
            use kendali::bus::broker;
            let settings = Settings::load(config)?;
            match a.out {
                None => print!("{}", broker::mosquitto_conf(&settings.mqtt)),
                Some(dir) => print!(
                    "{}",
                    broker::write_mosquitto_files(&settings.mqtt, &dir, a.force)
                        .with_context(|| format!("writing into {}", dir.display()))?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The database named by `--database-url` or the settings.
fn database_url(config: Option<&std::path::Path>, dir: &DirArgs) -> anyhow::Result<String> {
    match &dir.database_url {
        Some(u) => Ok(u.clone()),
        None => Settings::load(config)?.database.url.ok_or_else(|| {
            anyhow::anyhow!(
                "users, displays, the audit and a city's map are kept in the database: give \
                 --database-url (or KENDALI_DATABASE_URL, or database.url in the settings). \
                 Without a database Kendali keeps them in memory, for one run, and serves only \
                 the loopback wall"
            )
        }),
    }
}

/// The directory named by `--database-url` or the settings.
async fn directory(
    config: Option<&std::path::Path>,
    dir: &DirArgs,
) -> anyhow::Result<kendali::identity::directory::Directory> {
    let url = database_url(config, dir)?;
    Ok(kendali::identity::directory::Directory::connect(&url).await?)
}

/// A password from standard input (one line; the newline is not part of it).
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\n', '\r']).to_owned();
    kendali::identity::password::check(&p)?;
    Ok(p)
}

/// The audit entry of a change made from the command line.
fn cli_entry(action: &str, entity: String) -> kendali::identity::audit::Entry {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    kendali::identity::audit::Entry::new(&format!("cli:{who}"), "admin", "local", action)
        .entity(entity)
}

async fn users(config: Option<&std::path::Path>, c: UsersCmd) -> anyhow::Result<ExitCode> {
    use kendali::identity::{directory::User, password};
    match c {
        UsersCmd::Add {
            name,
            roles,
            cities,
            districts,
            password_stdin: _,
            dir,
        } => {
            let roles = kendali::web::admin::parse_roles(&roles).map_err(anyhow::Error::msg)?;
            let pw = password_from_stdin()?;
            let d = directory(config, &dir).await?;
            let user = User {
                username: name.trim().to_ascii_lowercase(),
                roles,
                cities,
                districts: districts.into_iter().filter(|d| !d.is_empty()).collect(),
                disabled: false,
                created: chrono::Utc::now(),
                password_hash: tokio::task::spawn_blocking(move || password::hash(&pw)).await??,
            };
            d.add_user(user.clone()).await?;
            d.audit(
                cli_entry("user_added", format!("user:{}", user.username)).detail(
                    serde_json::json!({ "roles": user.roles, "cities": user.cities, "districts": user.districts }),
                ),
            )
            .await?;
            println!("added {}", user.username);
        }
        UsersCmd::List { dir } => {
            let d = directory(config, &dir).await?;
            println!(
                "{:<24} {:<32} {:<20} {:<24} state",
                "user", "roles", "cities", "districts"
            );
            for u in d.users().await? {
                let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<24} {:<32} {:<20} {:<24} {}",
                    u.username,
                    roles.join(","),
                    u.cities.join(","),
                    u.districts.join(","),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UsersCmd::Disable { name, dir } => {
            let d = directory(config, &dir).await?;
            d.set_disabled(&name, true).await?;
            d.audit(cli_entry("user_disabled", format!("user:{name}")))
                .await?;
            println!("disabled {name}; their sessions have ended");
        }
        UsersCmd::Enable { name, dir } => {
            let d = directory(config, &dir).await?;
            d.set_disabled(&name, false).await?;
            d.audit(cli_entry("user_enabled", format!("user:{name}")))
                .await?;
            println!("enabled {name}");
        }
        UsersCmd::ResetPassword { name, dir, .. } => {
            let pw = password_from_stdin()?;
            let d = directory(config, &dir).await?;
            let h = tokio::task::spawn_blocking(move || password::hash(&pw)).await??;
            d.set_password(&name, h).await?;
            d.audit(cli_entry("password_reset", format!("user:{name}")))
                .await?;
            println!("new password set for {name}; their sessions have ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn displays(config: Option<&std::path::Path>, c: DisplaysCmd) -> anyhow::Result<ExitCode> {
    match c {
        DisplaysCmd::Add { name, layout, dir } => {
            let d = directory(config, &dir).await?;
            let token = d.add_display(&name, &layout).await?;
            d.audit(
                cli_entry("display_added", format!("display:{name}"))
                    .detail(serde_json::json!({ "layout": layout })),
            )
            .await?;
            println!("display {name} ({layout}): open this once on the wall's PC (the token is not shown again):");
            println!("  /?display={token}");
        }
        DisplaysCmd::List { dir } => {
            let d = directory(config, &dir).await?;
            for x in d.displays().await? {
                println!(
                    "{:<24} {:<10} {}",
                    x.name,
                    x.layout,
                    if x.revoked { "revoked" } else { "active" }
                );
            }
        }
        DisplaysCmd::Revoke { name, dir } => {
            let d = directory(config, &dir).await?;
            d.revoke_display(&name).await?;
            d.audit(cli_entry("display_revoked", format!("display:{name}")))
                .await?;
            println!("revoked {name}; its sessions have ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apps(config: Option<&std::path::Path>, c: AppsCmd) -> anyhow::Result<ExitCode> {
    match c {
        AppsCmd::Add { service, city, dir } => {
            let d = directory(config, &dir).await?;
            let (app, token) = d.add_app_token(&city, &service).await?;
            d.audit(
                cli_entry("app_token_added", format!("app:{city}/{service}"))
                    .detail(serde_json::json!({ "token_id": app.id })),
            )
            .await?;
            println!(
                "token {} for service {service} of city {city} (it is not shown again; keep it in the application's secret store):",
                app.id
            );
            println!("  {token}");
            println!("send it as `Authorization: Bearer {token}` to");
            println!("  POST /api/ingest/{city}/apps/{service}/events");
            println!("  POST /api/ingest/{city}/kpi/{service}");
        }
        AppsCmd::List { city, dir } => {
            let d = directory(config, &dir).await?;
            println!(
                "{:<10} {:<20} {:<24} {:<26} state",
                "id", "city", "service", "created"
            );
            for a in d.app_tokens(city.as_deref()).await? {
                println!(
                    "{:<10} {:<20} {:<24} {:<26} {}",
                    a.id,
                    a.city,
                    a.service,
                    a.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    if a.revoked { "revoked" } else { "active" }
                );
            }
        }
        AppsCmd::Revoke {
            service,
            city,
            id,
            dir,
        } => {
            let d = directory(config, &dir).await?;
            let ids = d.revoke_app_tokens(&city, &service, id.as_deref()).await?;
            d.audit(
                cli_entry("app_token_revoked", format!("app:{city}/{service}"))
                    .detail(serde_json::json!({ "token_ids": ids })),
            )
            .await?;
            println!(
                "revoked {} of service {service} of city {city}",
                ids.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn city(config: Option<&std::path::Path>, c: CityCmd) -> anyhow::Result<ExitCode> {
    use kendali::domain::catalogue::CityFile;
    let CityCmd::Import {
        file,
        city,
        name,
        time_zone,
        districts,
        roads,
        dir,
    } = c;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    // The city file, or the same said with flags (without a catalogue).
    let city_file = match (file, city, districts, roads) {
        (Some(f), ..) => {
            let mut c = CityFile::parse(&f.display().to_string(), &read(&f)?)?;
            let here = f.parent().unwrap_or(std::path::Path::new("."));
            c.districts = here.join(&c.districts);
            c.roads = here.join(&c.roads);
            c
        }
        (None, Some(slug), Some(districts), Some(roads)) => {
            if !kendali::contract::topic::is_city_slug(&slug) {
                bail!("--city {slug:?} is not a city slug (a-z, 0-9, '-'), as in its topics");
            }
            let time_zone = match time_zone.as_deref() {
                None => kendali::domain::Zone::default(),
                Some(z) => z.parse().map_err(|e| anyhow::anyhow!("--time-zone: {e}"))?,
            };
            CityFile {
                name: name.unwrap_or_else(|| slug.clone()),
                slug,
                time_zone,
                districts,
                roads,
                services: Vec::new(),
            }
        }
        _ => bail!("give --file, or --city with --districts and --roads"),
    };
    let (dtext, rtext) = (read(&city_file.districts)?, read(&city_file.roads)?);
    let (mut map, summary) = kendali::domain::geometry::import(
        &city_file.slug,
        &city_file.name,
        (&city_file.districts.display().to_string(), &dtext),
        (&city_file.roads.display().to_string(), &rtext),
    )?;
    map.time_zone = city_file.time_zone;
    map.services = city_file.services;
    // One connection (migrated) for the map and its audit row.
    let db = kendali::store::postgres::PgBackend::connect(&database_url(config, &dir)?, 2).await?;
    let pool = db.pool().clone();
    let d = kendali::identity::directory::Directory::Postgres(pool.clone());
    let mut detail = serde_json::to_value(&summary)?;
    detail["time_zone"] = serde_json::json!(map.time_zone.label());
    detail["services"] = serde_json::json!(map.services.len());
    let entry = cli_entry("city_map_imported", format!("city:{}", map.city)).detail(detail);
    kendali::store::maps::save(&pool, &map, &entry.actor).await?;
    d.audit(entry).await?;
    println!(
        "imported {} ({}, {}): {} districts, {} roads, {} points kept of {} read, {} services in its catalogue",
        map.city_name,
        map.city,
        map.time_zone.label(),
        summary.districts,
        summary.roads,
        summary.points_kept,
        summary.points_read,
        map.services.len()
    );
    println!("the wall, the consoles, the services screens and the unit router use it from Kendali's next start without a simulated city (--no-sim)");
    Ok(ExitCode::SUCCESS)
}

async fn doctor(config: Option<&std::path::Path>, a: DoctorArgs) -> anyhow::Result<ExitCode> {
    let settings = settings_for(config, a.serve)?;
    let report = kendali::doctor::run(
        &settings,
        &kendali::doctor::DoctorOptions {
            mosquitto_conf: a.mosquitto_conf,
            listen: Duration::from_secs(a.listen_s),
        },
    )
    .await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn nodes(config: Option<&std::path::Path>, c: NodesCmd) -> anyhow::Result<ExitCode> {
    let url = match &c {
        NodesCmd::List { dir } | NodesCmd::Forget { dir, .. } => database_url(config, dir)?,
    };
    let pg = kendali::store::postgres::PgBackend::connect(&url, 2).await?;
    let writers = pg.writers().await?;
    match c {
        NodesCmd::List { .. } => {
            if writers.is_empty() {
                println!("no node of a shared group has stored telemetry here");
            }
            for w in writers {
                let mark = w.watermark.map_or("-".into(), |t| t.to_rfc3339());
                let retired = w
                    .retired_at
                    .map_or(String::new(), |t| format!("  retired {}", t.to_rfc3339()));
                println!("{}  rollup up to {mark}{retired}", w.client_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        NodesCmd::Forget {
            client_id, force, ..
        } => {
            let Some(w) = writers.iter().find(|w| w.client_id == client_id) else {
                anyhow::bail!(
                    "no node `{client_id}` has stored telemetry here (`kendali nodes list` names them)"
                );
            };
            let recent = w
                .watermark
                .is_some_and(|t| chrono::Utc::now() - t < chrono::Duration::minutes(2));
            if recent && !force {
                anyhow::bail!(
                    "`{client_id}` added to the rollup less than 2 minutes ago: it looks alive. \
                     Stop it first (its last rows are added here), or give --force"
                );
            }
            let n = pg.retire_writer(&client_id).await?.unwrap_or(0);
            kendali::identity::directory::Directory::connect(&url)
                .await?
                .audit(
                    cli_entry("node_retired", format!("node:{client_id}"))
                        .detail(serde_json::json!({ "rollup_rows": n, "forced": force })),
                )
                .await?;
            println!(
                "`{client_id}` retired: its rows added to the rollup ({n} minute rows); \
                 history no longer waits for it (it counts again if it starts)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn audit(config: Option<&std::path::Path>, c: AuditCmd) -> anyhow::Result<ExitCode> {
    let AuditCmd::Verify { from, to, dir } = c;
    let d = directory(config, &dir).await?;
    match d.verify_audit(from, to).await? {
        Ok(n) => {
            println!("audit chain intact: {n} rows checked");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            eprintln!("audit chain BROKEN: {broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn report(config: Option<&std::path::Path>, a: ReportArgs) -> anyhow::Result<ExitCode> {
    use kendali::report::{self, html};
    let mut settings = Settings::load(config)?;
    if a.database_url.is_some() {
        settings.database.url = a.database_url.clone();
    }
    let Some(url) = settings.database.url.clone() else {
        anyhow::bail!(
            "the report is made from the database: give --database-url (or KENDALI_DATABASE_URL, \
             or database.url in the settings); a running node without one serves /reports/shift \
             from its memory"
        );
    };
    let lang = html::Lang::parse(&a.lang).context("--lang is id or en")?;
    let store = kendali::store::open(&settings.database).await?;
    // An imported city's zone (its city file's) where the settings give none.
    if let Some(pool) = store.pool() {
        for (city, zone) in kendali::store::maps::zones(&pool).await? {
            settings.cities.time_zones.entry(city).or_insert(zone);
        }
    }
    let dir = kendali::identity::directory::Directory::connect(&url).await?;
    let r = report::build(
        &store,
        &dir,
        &report::ReportSettings::of(&settings),
        &a.city,
        a.from.with_timezone(&chrono::Utc),
        a.to.with_timezone(&chrono::Utc),
    )
    .await?;
    let text = if a.json {
        serde_json::to_string_pretty(&r)? + "\n"
    } else {
        html::render(&r, lang, html::Styles::Inline)
    };
    match a.out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = kendali::app::Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

async fn simulate(config: Option<&std::path::Path>, a: SimulateArgs) -> anyhow::Result<ExitCode> {
    use kendali::sensors::{scenario::Scenario, sim::Simulation};
    let settings = Settings::load(config)?;
    let scenario = Scenario::resolve(&a.scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = kendali::bus::BrokerUrl::parse(&a.mqtt_url)?;
    let seed = a.seed.unwrap_or(scenario.seed);
    let human = a.human_dispatch || settings.sim.human_dispatch || scenario.human_dispatch;
    let accel = a
        .accel
        .or(settings.sim.accel)
        .unwrap_or(kendali::sensors::sim::default_accel(&scenario, human));
    let city = scenario.city.clone();
    tracing::info!(scenario = %scenario.name, seed, accel, human, broker = %a.mqtt_url, "simulating");
    let mut sim = Simulation::new(scenario, seed, accel);
    sim.set_human_dispatch(human);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let duration = a.duration_s;
    tokio::spawn(async move {
        match duration {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let _ = stop_tx.send(true);
    });
    let tick = Duration::from_millis(settings.sim.tick_ms);
    let stats =
        kendali::app::run_simulation(url, settings.mqtt, a.client_id, city, sim, tick, stop_rx)
            .await?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(ExitCode::SUCCESS)
}

async fn publish(a: PublishArgs) -> anyhow::Result<ExitCode> {
    use kendali::bus::{self, BusEvent, ConnectOptions, Qos};
    use kendali::contract::{decode, Limits};
    let payload: Vec<u8> = match a.payload.as_str() {
        "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
            buf
        }
        p if p.starts_with('@') => {
            std::fs::read(&p[1..]).with_context(|| format!("reading {}", &p[1..]))?
        }
        p => p.as_bytes().to_vec(),
    };
    let topic = match decode(&a.topic, &payload, &Limits::default(), chrono::Utc::now()) {
        Ok((topic, _)) => topic,
        Err(r) => {
            eprintln!("refused: {}: {}", r.reason, r.detail);
            eprintln!("nothing was published. The contract is in CONTRACT.md; schemas: `kendali schemas --kind KIND`.");
            return Ok(ExitCode::from(2));
        }
    };
    if a.dry_run {
        println!("valid {} message for {topic}", topic.kind().as_str());
        return Ok(ExitCode::SUCCESS);
    }
    let url = bus::BrokerUrl::parse(&a.mqtt_url)?;
    let mqtt = kendali::config::MqttSettings::default();
    let (client, mut events) = bus::connect(
        &url,
        &mqtt,
        &ConnectOptions {
            client_id: format!("kendali-publish-{}", std::process::id()),
            persistent: false,
            manual_acks: false,
            max_packet_bytes: mqtt.max_packet_bytes,
            request_capacity: 16,
        },
    )?;
    let qos = Qos::from_level(topic.qos());
    client
        .publish(topic.to_string(), qos, topic.retained(), payload)
        .await?;
    // Drive the connection until the broker has the message (PUBACK for QoS 1).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => bail!("no answer from the broker at {} within 10 s", a.mqtt_url),
            Ok(Err(e)) => bail!("broker {}: {e}", a.mqtt_url),
            Ok(Ok(BusEvent::PubAck)) => break,
            Ok(Ok(BusEvent::Sent)) if qos == Qos::AtMostOnce => break,
            Ok(Ok(_)) => {}
        }
    }
    client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
    println!("published {} message to {topic}", topic.kind().as_str());
    Ok(ExitCode::SUCCESS)
}

async fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(n) = a.stage_cost {
        let c = kendali::bench::stage::measure(n, a.intersections);
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    let o = kendali::bench::BenchOptions {
        broker: a.broker,
        database_url: a.database_url,
        rates: a.rates,
        intersections: a.intersections,
        call_rate: a.call_rate,
        clients: a.clients,
        duration_s: a.duration_s,
        warmup_s: a.warmup_s,
        memory_clients: a.memory_clients,
        baseline_messages: a.baseline_messages,
        publisher_connections: a.publisher_connections,
        telemetry_sample: a.telemetry_sample as usize,
        refine: a.refine,
        kendali_exe: a.kendali_exe,
        http: a.http,
        nodes: a.nodes as usize,
    };
    let report = kendali::bench::run(o).await?;
    std::fs::create_dir_all(&a.out)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let json = a.out.join(format!("bench-{stamp}.json"));
    let md = a.out.join(format!("bench-{stamp}.md"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let table = kendali::bench::markdown(&report);
    std::fs::write(&md, &table)?;
    println!("{table}\nwritten: {} and {}", json.display(), md.display());
    Ok(ExitCode::SUCCESS)
}

fn schemas(a: SchemasArgs) -> anyhow::Result<ExitCode> {
    use kendali::contract::{schema, MessageKind};
    if let Some(root) = a.write {
        for p in schema::write_all(&root)? {
            println!("wrote {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.kind {
        Some(k) => {
            let kind = MessageKind::parse(&k).with_context(|| format!("no message kind {k:?}"))?;
            print!("{}", schema::schema_text(kind));
        }
        None => {
            for k in MessageKind::ALL {
                println!("{}", k.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
