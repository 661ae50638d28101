//! The directory: users, wall displays, service applications' tokens,
//! sessions and the audit, in the
//! database beside the city's history, or in memory when no database is
//! configured (they last as long as the process then).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::audit::{self, Entry, Row};
use super::{Person, Role, Via};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<tokio_postgres::Error> for DirError {
    fn from(e: tokio_postgres::Error) -> Self {
        DirError::Store(StoreError::Database(e))
    }
}

impl From<deadpool_postgres::PoolError> for DirError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DirError::Store(StoreError::Pool(e))
    }
}

/// A user as the directory keeps it.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub username: String,
    pub roles: Vec<Role>,
    pub cities: Vec<String>,
    pub districts: Vec<String>,
    pub disabled: bool,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub created: DateTime<Utc>,
    /// The Argon2id PHC string; never leaves the server.
    #[serde(skip)]
    pub password_hash: String,
}

/// A wall display (its token is shown once, at creation, and kept hashed).
#[derive(Clone, Debug, Serialize)]
pub struct Display {
    pub name: String,
    pub layout: String,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub created: DateTime<Utc>,
    pub revoked: bool,
}

/// A service application's token (`kendali apps add`): it publishes one
/// service's events and KPIs of one city over HTTP. The token is shown once,
/// at creation, and kept hashed.
#[derive(Clone, Debug, Serialize)]
pub struct AppToken {
    /// The token's public name (the first 8 hex digits of its hash).
    pub id: String,
    pub city: String,
    pub service: String,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub created: DateTime<Utc>,
    pub revoked: bool,
}

/// An application token's prefix: recognisable in a leaked file or log (and
/// by secret scanners), never a user's or a display's.
pub const APP_TOKEN_PREFIX: &str = "kdl_app_";

/// Whose a session is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    User(String),
    Display(String),
}

#[derive(Clone, Debug)]
struct SessionRow {
    holder: Holder,
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    expires: DateTime<Utc>,
    revoked: bool,
}

/// A change to a user.
enum Change {
    Disabled(bool),
    Password(String),
}

/// How long sessions live.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A user's session ends this long after its last request (displays excepted).
    pub idle: Duration,
    /// A user's session ends this long after login, whatever its use.
    pub absolute: Duration,
    /// A display's session lasts this long.
    pub display: Duration,
}

/// A resolved session: the person, and the layout for a display.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub person: Person,
    pub layout: Option<String>,
}

/// Audit filters (`/admin/audit`, `kendali audit`).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

/// A session's last-seen time is written at most this often.
const TOUCH_EVERY: i64 = 60;
/// Audit rows kept by the memory directory (the oldest go first; the chain
/// is then verified from the first row kept).
const MEMORY_AUDIT_ROWS: usize = 100_000;
/// The lock that keeps audit appends in chain order across nodes.
const AUDIT_LOCK: i64 = 0x6b656e64_616c6931; // "kendali1"

/// The memory directory's contents.
#[derive(Default)]
pub struct Memory {
    users: BTreeMap<String, User>,
    displays: BTreeMap<String, (Display, String)>,
    /// Application tokens by id, with their keys.
    apps: BTreeMap<String, (AppToken, String)>,
    sessions: HashMap<String, SessionRow>,
    audit: Vec<Row>,
    next_audit_id: i64,
}

/// Where users, displays, sessions and the audit are kept.
#[derive(Clone)]
pub enum Directory {
    Memory(Arc<Mutex<Memory>>),
    Postgres(Pool),
}

fn person_of(user: &User, key: &str) -> Person {
    Person {
        username: Some(user.username.clone()),
        roles: user.roles.clone(),
        cities: user.cities.clone(),
        districts: user.districts.clone(),
        via: Via::Login,
        session: Some(key.to_owned()),
    }
}

fn display_person(name: &str, key: &str) -> Person {
    Person {
        username: Some(format!("display:{name}")),
        roles: vec![Role::Wall],
        via: Via::Display,
        session: Some(key.to_owned()),
        ..Person::anonymous_wall()
    }
}

fn roles_of(texts: Vec<String>) -> Vec<Role> {
    texts.iter().filter_map(|r| Role::parse(r)).collect()
}

fn role_texts(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

fn user_row(r: &tokio_postgres::Row) -> User {
    User {
        username: r.get("username"),
        roles: roles_of(r.get("roles")),
        cities: r.get("cities"),
        districts: r.get("districts"),
        disabled: r.get("disabled"),
        created: r.get("created"),
        password_hash: r.get("password_hash"),
    }
}

fn audit_row(r: &tokio_postgres::Row) -> Row {
    Row {
        id: r.get("id"),
        at: r.get("at"),
        entry: Entry {
            actor: r.get("actor"),
            role: r.get("role"),
            addr: r.get("addr"),
            action: r.get("action"),
            entity: r.get("entity"),
            outcome: r.get("outcome"),
            detail: r.get("detail"),
        },
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

const USER_COLUMNS: &str = "username, roles, cities, districts, disabled, created, password_hash";
const AUDIT_COLUMNS: &str =
    "id, at, actor, role, addr, action, entity, outcome, detail, prev_hash, hash";

impl Directory {
    pub fn memory() -> Directory {
        Directory::Memory(Arc::new(Mutex::new(Memory {
            next_audit_id: 1,
            ..Memory::default()
        })))
    }

    /// The directory beside the store: its database, or memory.
    pub fn beside(store: &crate::store::StoreHandle) -> Directory {
        match store.pool() {
            Some(pool) => Directory::Postgres(pool),
            None => Directory::memory(),
        }
    }

    /// The directory of a database (for the command line): migrates it first.
    pub async fn connect(url: &str) -> Result<Directory, DirError> {
        let backend = crate::store::postgres::PgBackend::connect(url, 2).await?;
        Ok(Directory::Postgres(backend.pool().clone()))
    }

    pub fn persistent(&self) -> bool {
        matches!(self, Directory::Postgres(_))
    }

    fn mem(m: &Arc<Mutex<Memory>>) -> std::sync::MutexGuard<'_, Memory> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ------------------------------------------------------------ users

    pub async fn add_user(&self, user: User) -> Result<(), DirError> {
        super::check_username(&user.username).map_err(DirError::Invalid)?;
        if user.roles.is_empty() {
            return Err(DirError::Invalid("a user needs at least one role".into()));
        }
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                if m.users.contains_key(&user.username) {
                    return Err(DirError::Conflict(format!(
                        "user {:?} exists",
                        user.username
                    )));
                }
                m.users.insert(user.username.clone(), user);
                Ok(())
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let n = c
                    .execute(
                        "INSERT INTO users (username, roles, cities, districts, password_hash, disabled, created) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING",
                        &[
                            &user.username,
                            &role_texts(&user.roles),
                            &user.cities,
                            &user.districts,
                            &user.password_hash,
                            &user.disabled,
                            &user.created,
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(DirError::Conflict(format!(
                        "user {:?} exists",
                        user.username
                    )));
                }
                Ok(())
            }
        }
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>, DirError> {
        match self {
            Directory::Memory(m) => Ok(Self::mem(m).users.get(username).cloned()),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                        &[&username],
                    )
                    .await?;
                Ok(row.as_ref().map(user_row))
            }
        }
    }

    pub async fn users(&self) -> Result<Vec<User>, DirError> {
        match self {
            Directory::Memory(m) => Ok(Self::mem(m).users.values().cloned().collect()),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
                        &[],
                    )
                    .await?;
                Ok(rows.iter().map(user_row).collect())
            }
        }
    }

    /// Disables (or enables) a user; disabling ends their sessions.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), DirError> {
        self.change_user(username, Change::Disabled(disabled)).await
    }

    /// Sets a new password hash; the user's sessions end.
    pub async fn set_password(&self, username: &str, hash: String) -> Result<(), DirError> {
        self.change_user(username, Change::Password(hash)).await
    }

    async fn change_user(&self, username: &str, change: Change) -> Result<(), DirError> {
        let missing = || DirError::NotFound(format!("no user {username:?}"));
        // A disabled user or a new password ends every session the user had.
        let ends_sessions = !matches!(change, Change::Disabled(false));
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                let user = m.users.get_mut(username).ok_or_else(missing)?;
                match change {
                    Change::Disabled(d) => user.disabled = d,
                    Change::Password(h) => user.password_hash = h,
                }
                if ends_sessions {
                    revoke_holder(&mut m, &Holder::User(username.to_owned()));
                }
                Ok(())
            }
            Directory::Postgres(pool) => {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let n = match &change {
                    Change::Disabled(d) => {
                        tx.execute(
                            "UPDATE users SET disabled = $2, changed = now() WHERE username = $1",
                            &[&username, d],
                        )
                        .await?
                    }
                    Change::Password(h) => {
                        tx.execute(
                            "UPDATE users SET password_hash = $2, changed = now() WHERE username = $1",
                            &[&username, h],
                        )
                        .await?
                    }
                };
                if n == 0 {
                    return Err(missing());
                }
                if ends_sessions {
                    tx.execute(
                        "UPDATE sessions SET revoked = now() WHERE username = $1 AND revoked IS NULL",
                        &[&username],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    // ------------------------------------------------------------ displays

    /// Adds a display; returns its token (shown once).
    pub async fn add_display(&self, name: &str, layout: &str) -> Result<String, DirError> {
        super::check_username(name).map_err(|e| DirError::Invalid(e.replace("user", "display")))?;
        let (token, key) = super::new_token();
        let now = audit::stored_time(Utc::now());
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                if m.displays.contains_key(name) {
                    return Err(DirError::Conflict(format!("display {name:?} exists")));
                }
                let d = Display {
                    name: name.to_owned(),
                    layout: layout.to_owned(),
                    created: now,
                    revoked: false,
                };
                m.displays.insert(name.to_owned(), (d, key));
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let n = c
                    .execute(
                        "INSERT INTO displays (name, layout, token_key, created) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (name) DO NOTHING",
                        &[&name, &layout, &key, &now],
                    )
                    .await?;
                if n == 0 {
                    return Err(DirError::Conflict(format!("display {name:?} exists")));
                }
            }
        }
        Ok(token)
    }

    pub async fn displays(&self) -> Result<Vec<Display>, DirError> {
        match self {
            Directory::Memory(m) => Ok(Self::mem(m)
                .displays
                .values()
                .map(|(d, _)| d.clone())
                .collect()),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "SELECT name, layout, created, revoked IS NOT NULL AS revoked FROM displays ORDER BY name",
                        &[],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| Display {
                        name: r.get(0),
                        layout: r.get(1),
                        created: r.get(2),
                        revoked: r.get(3),
                    })
                    .collect())
            }
        }
    }

    /// Revokes a display token and ends the display's sessions.
    pub async fn revoke_display(&self, name: &str) -> Result<(), DirError> {
        let missing = || DirError::NotFound(format!("no display {name:?}"));
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                m.displays.get_mut(name).ok_or_else(missing)?.0.revoked = true;
                revoke_holder(&mut m, &Holder::Display(name.to_owned()));
                Ok(())
            }
            Directory::Postgres(pool) => {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let n = tx
                    .execute(
                        "UPDATE displays SET revoked = coalesce(revoked, now()) WHERE name = $1",
                        &[&name],
                    )
                    .await?;
                if n == 0 {
                    return Err(missing());
                }
                tx.execute(
                    "UPDATE sessions SET revoked = now() WHERE display = $1 AND revoked IS NULL",
                    &[&name],
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// The display a token opens, if it is known and not revoked: `(name, layout)`.
    pub async fn display_by_token(
        &self,
        token: &str,
    ) -> Result<Option<(String, String)>, DirError> {
        let key = super::token_key(token);
        match self {
            Directory::Memory(m) => Ok(Self::mem(m)
                .displays
                .values()
                .find(|(d, k)| *k == key && !d.revoked)
                .map(|(d, _)| (d.name.clone(), d.layout.clone()))),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        "SELECT name, layout FROM displays WHERE token_key = $1 AND revoked IS NULL",
                        &[&key],
                    )
                    .await?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            }
        }
    }

    // ------------------------------------------------------------ applications

    /// Adds a token for `service` of `city`; returns it (shown once) and its id.
    pub async fn add_app_token(
        &self,
        city: &str,
        service: &str,
    ) -> Result<(AppToken, String), DirError> {
        if !crate::contract::topic::is_city_slug(city) {
            return Err(DirError::Invalid(format!(
                "city {city:?} is not a slug (1-64 of a-z, 0-9, '-')"
            )));
        }
        if !crate::contract::topic::is_identifier(service) {
            return Err(DirError::Invalid(format!(
                "service {service:?}: use 1 to 64 of a-z A-Z 0-9 _ - (as in its topic)"
            )));
        }
        let (secret, _) = super::new_token();
        let token = format!("{APP_TOKEN_PREFIX}{secret}");
        let key = super::token_key(&token);
        let app = AppToken {
            id: key[..8].to_owned(),
            city: city.to_owned(),
            service: service.to_owned(),
            created: audit::stored_time(Utc::now()),
            revoked: false,
        };
        match self {
            Directory::Memory(m) => {
                Self::mem(m).apps.insert(app.id.clone(), (app.clone(), key));
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                c.execute(
                    "INSERT INTO app_tokens (id, city, service, token_key, created) VALUES ($1, $2, $3, $4, $5)",
                    &[&app.id, &app.city, &app.service, &key, &app.created],
                )
                .await?;
            }
        }
        Ok((app, token))
    }

    /// The application tokens (of one city, if given), revoked ones included.
    pub async fn app_tokens(&self, city: Option<&str>) -> Result<Vec<AppToken>, DirError> {
        let mut all = match self {
            Directory::Memory(m) => Self::mem(m).apps.values().map(|(a, _)| a.clone()).collect(),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                c.query(
                    "SELECT id, city, service, created, revoked IS NOT NULL FROM app_tokens",
                    &[],
                )
                .await?
                .iter()
                .map(|r| AppToken {
                    id: r.get(0),
                    city: r.get(1),
                    service: r.get(2),
                    created: r.get(3),
                    revoked: r.get(4),
                })
                .collect::<Vec<_>>()
            }
        };
        all.retain(|a| city.is_none_or(|c| a.city == c));
        all.sort_by(|a, b| (&a.city, &a.service, a.created).cmp(&(&b.city, &b.service, b.created)));
        Ok(all)
    }

    /// Revokes the tokens of `service` of `city` that are still valid, or
    /// only the one named `id`; returns the ids revoked (none is an error).
    pub async fn revoke_app_tokens(
        &self,
        city: &str,
        service: &str,
        id: Option<&str>,
    ) -> Result<Vec<String>, DirError> {
        let revoked = match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                let mut ids = Vec::new();
                for (a, _) in m.apps.values_mut() {
                    if a.city == city
                        && a.service == service
                        && !a.revoked
                        && id.is_none_or(|i| i == a.id)
                    {
                        a.revoked = true;
                        ids.push(a.id.clone());
                    }
                }
                ids
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                c.query(
                    "UPDATE app_tokens SET revoked = now() \
                      WHERE city = $1 AND service = $2 AND revoked IS NULL \
                        AND ($3::text IS NULL OR id = $3) RETURNING id",
                    &[&city, &service, &id],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect()
            }
        };
        if revoked.is_empty() {
            return Err(DirError::NotFound(match id {
                Some(i) => format!("no valid token {i:?} of service {service:?} in city {city:?}"),
                None => format!("no valid token of service {service:?} in city {city:?}"),
            }));
        }
        Ok(revoked)
    }

    /// The application a token belongs to, if it is known and not revoked.
    pub async fn app_by_token(&self, token: &str) -> Result<Option<AppToken>, DirError> {
        if !token.starts_with(APP_TOKEN_PREFIX) {
            return Ok(None);
        }
        let key = super::token_key(token);
        match self {
            Directory::Memory(m) => Ok(Self::mem(m)
                .apps
                .values()
                .find(|(a, k)| *k == key && !a.revoked)
                .map(|(a, _)| a.clone())),
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        "SELECT id, city, service, created FROM app_tokens \
                          WHERE token_key = $1 AND revoked IS NULL",
                        &[&key],
                    )
                    .await?;
                Ok(row.map(|r| AppToken {
                    id: r.get(0),
                    city: r.get(1),
                    service: r.get(2),
                    created: r.get(3),
                    revoked: false,
                }))
            }
        }
    }

    // ------------------------------------------------------------ sessions

    /// Opens a session; returns its token (the cookie's value).
    pub async fn open_session(
        &self,
        holder: Holder,
        addr: &str,
        lifetime: Duration,
    ) -> Result<String, DirError> {
        let (token, key) = super::new_token();
        let now = Utc::now();
        let expires = now + lifetime;
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                // Expired sessions go when new ones come.
                m.sessions.retain(|_, s| s.expires > now && !s.revoked);
                m.sessions.insert(
                    key,
                    SessionRow {
                        holder,
                        created: now,
                        last_seen: now,
                        expires,
                        revoked: false,
                    },
                );
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let (user, display) = match &holder {
                    Holder::User(u) => (Some(u.as_str()), None),
                    Holder::Display(d) => (None, Some(d.as_str())),
                };
                c.execute(
                    "INSERT INTO sessions (key, username, display, created, last_seen, expires, addr) \
                     VALUES ($1, $2, $3, $4, $4, $5, $6)",
                    &[&key, &user, &display, &now, &expires, &addr],
                )
                .await?;
                // Sessions ended more than a day ago are of no further use.
                c.execute(
                    "DELETE FROM sessions WHERE expires < now() - interval '1 day' \
                     OR revoked < now() - interval '1 day'",
                    &[],
                )
                .await?;
            }
        }
        Ok(token)
    }

    /// Who a session's token belongs to, if the session is still valid:
    /// not revoked, not past its absolute end, not idle too long (displays
    /// excepted), its user not disabled, its display not revoked.
    ///
    /// A request counts as activity (`touch`); an open websocket's periodic
    /// check does not, or a console left open would never idle out.
    pub async fn resolve(
        &self,
        token: &str,
        t: &Timeouts,
        touch: bool,
    ) -> Result<Option<Resolved>, DirError> {
        let key = super::token_key(token);
        let now = Utc::now();
        let valid = |s: &SessionRow| {
            !s.revoked
                && s.expires > now
                && (matches!(s.holder, Holder::Display(_)) || now - s.last_seen < t.idle)
        };
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                let Some(s) = m.sessions.get(&key).cloned() else {
                    return Ok(None);
                };
                if !valid(&s) {
                    return Ok(None);
                }
                let resolved = match &s.holder {
                    Holder::User(u) => match m.users.get(u) {
                        Some(user) if !user.disabled => Resolved {
                            person: person_of(user, &key),
                            layout: None,
                        },
                        _ => return Ok(None),
                    },
                    Holder::Display(d) => match m.displays.get(d) {
                        Some((disp, _)) if !disp.revoked => Resolved {
                            person: display_person(d, &key),
                            layout: Some(disp.layout.clone()),
                        },
                        _ => return Ok(None),
                    },
                };
                if let Some(s) = m.sessions.get_mut(&key).filter(|_| touch) {
                    s.last_seen = now;
                }
                Ok(Some(resolved))
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let Some(r) = c
                    .query_opt(
                        "SELECT s.username, s.display, s.created, s.last_seen, s.expires, s.revoked IS NOT NULL, \
                                u.roles, u.cities, u.districts, coalesce(u.disabled, false), \
                                d.layout, d.revoked IS NOT NULL \
                         FROM sessions s LEFT JOIN users u ON u.username = s.username \
                         LEFT JOIN displays d ON d.name = s.display WHERE s.key = $1",
                        &[&key],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let username: Option<String> = r.get(0);
                let display: Option<String> = r.get(1);
                let holder = match (username, display) {
                    (Some(u), _) => Holder::User(u),
                    (None, Some(d)) => Holder::Display(d),
                    (None, None) => return Ok(None),
                };
                let s = SessionRow {
                    holder,
                    created: r.get(2),
                    last_seen: r.get(3),
                    expires: r.get(4),
                    revoked: r.get(5),
                };
                if !valid(&s) {
                    return Ok(None);
                }
                let resolved = match &s.holder {
                    Holder::User(u) => {
                        let roles: Option<Vec<String>> = r.get(6);
                        let disabled: bool = r.get(9);
                        let Some(roles) = roles.filter(|_| !disabled) else {
                            return Ok(None);
                        };
                        Resolved {
                            person: Person {
                                username: Some(u.clone()),
                                roles: roles_of(roles),
                                cities: r.get::<_, Option<Vec<String>>>(7).unwrap_or_default(),
                                districts: r.get::<_, Option<Vec<String>>>(8).unwrap_or_default(),
                                via: Via::Login,
                                session: Some(key.clone()),
                            },
                            layout: None,
                        }
                    }
                    Holder::Display(d) => {
                        let revoked: bool = r.get(11);
                        let layout: Option<String> = r.get(10);
                        if revoked || layout.is_none() {
                            return Ok(None);
                        }
                        Resolved {
                            person: display_person(d, &key),
                            layout,
                        }
                    }
                };
                if touch && (now - s.last_seen).num_seconds() >= TOUCH_EVERY {
                    c.execute(
                        "UPDATE sessions SET last_seen = $2 WHERE key = $1",
                        &[&key, &now],
                    )
                    .await?;
                }
                let _ = s.created;
                Ok(Some(resolved))
            }
        }
    }

    /// Ends one session (logout), by its key.
    pub async fn revoke_session(&self, key: &str) -> Result<(), DirError> {
        match self {
            Directory::Memory(m) => {
                if let Some(s) = Self::mem(m).sessions.get_mut(key) {
                    s.revoked = true;
                }
                Ok(())
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                c.execute(
                    "UPDATE sessions SET revoked = now() WHERE key = $1 AND revoked IS NULL",
                    &[&key],
                )
                .await?;
                Ok(())
            }
        }
    }

    // ------------------------------------------------------------ audit

    /// Appends one row to the chain.
    pub async fn audit(&self, entry: Entry) -> Result<Row, DirError> {
        let at = audit::stored_time(Utc::now());
        match self {
            Directory::Memory(m) => {
                let mut m = Self::mem(m);
                let prev = m
                    .audit
                    .last()
                    .map_or_else(|| audit::GENESIS.to_owned(), |r| r.hash.clone());
                let hash = audit::chain(&prev, at, &entry);
                let row = Row {
                    id: m.next_audit_id,
                    at,
                    entry,
                    prev_hash: prev,
                    hash,
                };
                m.next_audit_id += 1;
                if m.audit.len() >= MEMORY_AUDIT_ROWS {
                    m.audit.remove(0);
                }
                m.audit.push(row.clone());
                Ok(row)
            }
            Directory::Postgres(pool) => {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                // Every node appends under the same lock, so ids follow the chain.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                    .await?;
                let prev: String = tx
                    .query_opt("SELECT hash FROM audit ORDER BY id DESC LIMIT 1", &[])
                    .await?
                    .map_or_else(|| audit::GENESIS.to_owned(), |r| r.get(0));
                let hash = audit::chain(&prev, at, &entry);
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO audit (at, actor, role, addr, action, entity, outcome, detail, prev_hash, hash) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                        &[
                            &at,
                            &entry.actor,
                            &entry.role,
                            &entry.addr,
                            &entry.action,
                            &entry.entity,
                            &entry.outcome,
                            &entry.detail,
                            &prev,
                            &hash,
                        ],
                    )
                    .await?
                    .get(0);
                tx.commit().await?;
                Ok(Row {
                    id,
                    at,
                    entry,
                    prev_hash: prev,
                    hash,
                })
            }
        }
    }

    /// Audit rows matching the filters, newest first.
    pub async fn audit_rows(&self, q: &AuditQuery) -> Result<Vec<Row>, DirError> {
        let limit = q.limit.clamp(1, 10_000);
        match self {
            Directory::Memory(m) => {
                let m = Self::mem(m);
                Ok(m.audit
                    .iter()
                    .rev()
                    .filter(|r| q.actor.as_ref().is_none_or(|a| &r.entry.actor == a))
                    .filter(|r| q.action.as_ref().is_none_or(|a| &r.entry.action == a))
                    .filter(|r| q.entity.as_ref().is_none_or(|e| &r.entry.entity == e))
                    .filter(|r| q.from.is_none_or(|f| r.at >= f))
                    .filter(|r| q.to.is_none_or(|t| r.at < t))
                    .take(limit)
                    .cloned()
                    .collect())
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        &format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit WHERE ($1::text IS NULL OR actor = $1) \
                             AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR entity = $3) \
                             AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) \
                             ORDER BY id DESC LIMIT $6"
                        ),
                        &[&q.actor, &q.action, &q.entity, &q.from, &q.to, &(limit as i64)],
                    )
                    .await?;
                Ok(rows.iter().map(audit_row).collect())
            }
        }
    }

    /// Recomputes the chain over the rows in `[from, to)` (all by default).
    /// Returns the number of rows checked, or the first row that does not match.
    pub async fn verify_audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Result<u64, audit::Broken>, DirError> {
        match self {
            Directory::Memory(m) => {
                let m = Self::mem(m);
                let rows: Vec<&Row> = m
                    .audit
                    .iter()
                    .filter(|r| from.is_none_or(|f| r.at >= f) && to.is_none_or(|t| r.at < t))
                    .collect();
                let prev = rows
                    .first()
                    .map_or_else(|| audit::GENESIS.to_owned(), |r| r.prev_hash.clone());
                Ok(audit::verify(&prev, rows))
            }
            Directory::Postgres(pool) => {
                let c = pool.get().await?;
                // The first row's link is checked against the row before it, when there is one.
                let first_id: Option<i64> = c
                    .query_one(
                        "SELECT min(id) FROM audit WHERE ($1::timestamptz IS NULL OR at >= $1) \
                         AND ($2::timestamptz IS NULL OR at < $2)",
                        &[&from, &to],
                    )
                    .await?
                    .get(0);
                let Some(first_id) = first_id else {
                    return Ok(Ok(0));
                };
                let mut prev: String = c
                    .query_opt(
                        "SELECT hash FROM audit WHERE id < $1 ORDER BY id DESC LIMIT 1",
                        &[&first_id],
                    )
                    .await?
                    .map_or_else(|| audit::GENESIS.to_owned(), |r| r.get(0));
                let mut after = first_id - 1;
                let mut checked = 0;
                loop {
                    let rows: Vec<Row> = c
                        .query(
                            &format!(
                                "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > $1 \
                                 AND ($2::timestamptz IS NULL OR at < $2) ORDER BY id LIMIT 10000"
                            ),
                            &[&after, &to],
                        )
                        .await?
                        .iter()
                        .map(audit_row)
                        .collect();
                    let Some(last) = rows.last() else {
                        return Ok(Ok(checked));
                    };
                    after = last.id;
                    match audit::verify(&prev, &rows) {
                        Ok(n) => checked += n,
                        Err(b) => return Ok(Err(b)),
                    }
                    prev = last.hash.clone();
                }
            }
        }
    }
}

fn revoke_holder(m: &mut Memory, holder: &Holder) {
    for s in m.sessions.values_mut() {
        if &s.holder == holder {
            s.revoked = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_application_token_opens_only_its_app_until_revoked() {
        let d = Directory::memory();
        let (a, token) = d.add_app_token("cilegon", "perizinan").await.unwrap();
        let (b, other) = d.add_app_token("cilegon", "perizinan").await.unwrap();
        assert!(token.starts_with(APP_TOKEN_PREFIX) && token.len() == 8 + 64);
        assert_ne!(a.id, b.id);
        let found = d.app_by_token(&token).await.unwrap().unwrap();
        assert_eq!(
            (found.city.as_str(), found.service.as_str()),
            ("cilegon", "perizinan")
        );
        // A session's or a display's token never opens an application.
        let (plain, _) = super::super::new_token();
        assert!(d.app_by_token(&plain).await.unwrap().is_none());
        // Revoking one leaves the other (a rotation).
        let ids = d
            .revoke_app_tokens("cilegon", "perizinan", Some(&a.id))
            .await
            .unwrap();
        assert_eq!(ids, vec![a.id.clone()]);
        assert!(d.app_by_token(&token).await.unwrap().is_none());
        assert!(d.app_by_token(&other).await.unwrap().is_some());
        assert!(matches!(
            d.revoke_app_tokens("cilegon", "perizinan", Some(&a.id))
                .await,
            Err(DirError::NotFound(_))
        ));
        assert!(matches!(
            d.add_app_token("Cilegon!", "perizinan").await,
            Err(DirError::Invalid(_))
        ));
        assert!(matches!(
            d.add_app_token("cilegon", "izin/baru").await,
            Err(DirError::Invalid(_))
        ));
        let listed = d.app_tokens(Some("cilegon")).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed.iter().filter(|t| t.revoked).count(), 1);
        assert!(d.app_tokens(Some("badung")).await.unwrap().is_empty());
    }
}
