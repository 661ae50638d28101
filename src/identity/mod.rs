//! Who may act: people and their roles, the scope of a traffic officer, the
//! sessions that carry them, the wall displays' tokens, and the hash-chained
//! audit of what they did. No web types here: the web layer asks
//! [`Person::may`] and the directory ([`directory::Directory`]) answers who a
//! session belongs to.

pub mod audit;
pub mod directory;
pub mod password;
pub mod throttle;

use serde::{Deserialize, Serialize};

/// A role a user holds. A user may hold several (an admin who is also a
/// supervisor); an admin alone takes no operational action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A read-only display (the video wall).
    Wall,
    /// The wall, plus acknowledging and shelving alerts (as every role above it).
    Operator,
    /// 112/119 calls and field units, with callers' personal data.
    Dispatcher,
    /// Intersections and their commands, within the user's cities and districts.
    TrafficOfficer,
    /// Everything operational, reports and the handover.
    Supervisor,
    /// Users, display tokens and settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Wall,
        Role::Operator,
        Role::Dispatcher,
        Role::TrafficOfficer,
        Role::Supervisor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Wall => "wall",
            Role::Operator => "operator",
            Role::Dispatcher => "dispatcher",
            Role::TrafficOfficer => "traffic_officer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a request may want to do; each route names one (`web::routes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// See the room (the wall's data, without callers' personal data).
    View,
    /// See callers' address, position, phone and notes.
    PersonalData,
    /// Acknowledge alerts.
    AcknowledgeAlerts,
    /// Act on calls and units.
    Dispatch,
    /// Command traffic controllers (within the user's scope).
    Traffic,
    /// Reports and the shift handover.
    Reports,
    /// Read the audit log and the dead letters.
    Audit,
    /// Manage users and display tokens.
    Administer,
}

impl Permission {
    /// The roles that hold this permission.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|r| self.granted_to(*r))
            .collect()
    }

    fn granted_to(self, role: Role) -> bool {
        use Permission::*;
        use Role::*;
        match self {
            View => true,
            PersonalData | Dispatch => matches!(role, Dispatcher | Supervisor),
            AcknowledgeAlerts => {
                matches!(role, Operator | Dispatcher | TrafficOfficer | Supervisor)
            }
            Traffic => matches!(role, TrafficOfficer | Supervisor),
            Reports => role == Supervisor,
            Audit => matches!(role, Supervisor | Admin),
            Administer => role == Admin,
        }
    }
}

/// How a person came to be known to this request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A user's session (login).
    Login,
    /// A wall display's long-lived session (display token).
    Display,
    /// No session: a read-only wall for a client on an allowed network.
    Anonymous,
}

/// Who is behind a request: resolved from the session at each HTTP request
/// and once at the websocket upgrade, never from what a request body says.
#[derive(Clone, Debug, Serialize)]
pub struct Person {
    /// The user (or display) name; `None` for the anonymous wall.
    pub username: Option<String>,
    pub roles: Vec<Role>,
    /// Cities a traffic officer may act in (empty: every city).
    pub cities: Vec<String>,
    /// Districts a traffic officer may act in (empty: every district of the cities).
    pub districts: Vec<String>,
    pub via: Via,
    /// The session's key (the hash of its token), to revoke it at logout.
    #[serde(skip)]
    pub session: Option<String>,
}

impl Person {
    /// The read-only wall served without login to allowed networks.
    pub fn anonymous_wall() -> Person {
        Person {
            username: None,
            roles: vec![Role::Wall],
            cities: Vec::new(),
            districts: Vec::new(),
            via: Via::Anonymous,
            session: None,
        }
    }

    pub fn may(&self, p: Permission) -> bool {
        self.roles.iter().any(|r| p.granted_to(*r))
    }

    /// Whether the person may act on something in this city and district
    /// (`None`: the district is not known, which only an unscoped user may act on).
    pub fn in_scope(&self, city: &str, district: Option<&str>) -> bool {
        // A supervisor acts anywhere.
        if self.roles.contains(&Role::Supervisor) {
            return true;
        }
        let city_ok = self.cities.is_empty() || self.cities.iter().any(|c| c == city);
        let district_ok = self.districts.is_empty()
            || district.is_some_and(|d| self.districts.iter().any(|x| x == d));
        city_ok && district_ok
    }

    /// Whether the user may act in `city` at all (districts aside: calls
    /// and units are the whole city's).
    pub fn in_city(&self, city: &str) -> bool {
        self.roles.contains(&Role::Supervisor)
            || self.cities.is_empty()
            || self.cities.iter().any(|c| c == city)
    }

    /// The name recorded as who acted (`anonymous` for the loopback wall).
    pub fn name(&self) -> &str {
        self.username.as_deref().unwrap_or("anonymous")
    }

    /// The roles as one text (`dispatcher,supervisor`), for the audit.
    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A user's name: what the CLI, the admin screen and the audit show.
/// Lowercase letters, digits, `.`, `_`, `-`; 2 to 64 characters.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user name {name:?}: use 2 to 64 of a-z, 0-9, '.', '_', '-'"
        ))
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A new secret token (32 random bytes, hex) and the key it is kept under
/// (its SHA-256): the database never holds a usable token.
pub fn new_token() -> (String, String) {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex(&bytes);
    let key = token_key(&token);
    (token, key)
}

/// The key a token is kept under.
pub fn token_key(token: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traffic_officer_acts_only_in_their_districts() {
        let p = Person {
            username: Some("budi".into()),
            roles: vec![Role::TrafficOfficer],
            cities: vec!["cilegon".into()],
            districts: vec!["Jombang".into()],
            via: Via::Login,
            session: None,
        };
        assert!(p.may(Permission::Traffic));
        assert!(!p.may(Permission::PersonalData));
        assert!(p.in_scope("cilegon", Some("Jombang")));
        assert!(!p.in_scope("cilegon", Some("Citangkil")));
        assert!(!p.in_scope("cilegon", None));
        assert!(!p.in_scope("serang", Some("Jombang")));
    }

    #[test]
    fn an_admin_alone_takes_no_operational_action() {
        let p = Person {
            roles: vec![Role::Admin],
            ..Person::anonymous_wall()
        };
        assert!(p.may(Permission::Administer));
        assert!(!p.may(Permission::Traffic));
        assert!(!p.may(Permission::Dispatch));
        assert!(!p.may(Permission::PersonalData));
    }

    #[test]
    fn tokens_are_kept_by_hash() {
        let (t, k) = new_token();
        assert_eq!(t.len(), 64);
        assert_eq!(token_key(&t), k);
        assert_ne!(t, k);
    }
}
