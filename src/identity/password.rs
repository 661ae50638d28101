//! Passwords: Argon2id in PHC strings (the parameters travel with each hash,
//! so they can be raised later without invalidating old ones). Hashing and
//! verifying take tens of milliseconds of CPU: callers run them on a
//! blocking thread.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// Shortest password accepted (NIST SP 800-63B's floor for chosen secrets).
pub const MIN_LEN: usize = 8;
/// Longest password accepted: Argon2 takes any length, a login body does not.
pub const MAX_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LEN} characters")]
    TooShort,
    #[error("a password has at most {MAX_LEN} bytes")]
    TooLong,
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Checks a new password's length.
pub fn check(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// The PHC string of a new password (Argon2id, the crate's default parameters).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc`. With no user (`phc` is `None`) a hash
/// of the same cost is still checked, so that an unknown user and a wrong
/// password take the same time.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    static DECOY: OnceLock<String> = OnceLock::new();
    let decoy = DECOY.get_or_init(|| {
        hash("decoy password, never matches a login").expect("hashing a fixed password")
    });
    let (phc, real) = match phc {
        Some(p) => (p, true),
        None => (decoy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = password.len() <= MAX_LEN
        && Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("wrong horse battery", Some(&h)));
        assert!(!verify("correct horse battery", None));
        assert!(!verify("anything", Some("not a phc string")));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}
