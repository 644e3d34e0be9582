//! Secrets at rest: passwords as argon2id PHC strings, API tokens and session ids as random
//! 256-bit values shown once and kept only as their SHA-256 hash; the password policy.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A password's argon2id hash (PHC string, with its own random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches a stored hash (a malformed hash matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fresh secret: `prefix` and 32 random bytes, base64url without padding.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How a token or session id is kept: its SHA-256, hex. (They are random 256-bit values, so
/// a fast hash suffices; passwords, chosen by people, get argon2id.)
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What a password must have: at least `min_chars` characters of at least `min_classes` of
/// the four classes (lower case, upper case, digits, others), and not the user's name.
pub fn check_password(
    password: &str,
    user: &str,
    min_chars: usize,
    min_classes: usize,
) -> Result<(), String> {
    if password.chars().count() < min_chars {
        return Err(format!(
            "the password must have at least {min_chars} characters"
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if classes < min_classes {
        return Err(format!(
            "the password must mix at least {min_classes} of: lower case, upper case, digits, other characters"
        ));
    }
    if password.to_lowercase().contains(&user.to_lowercase()) {
        return Err("the password must not contain the user name".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("Correct-horse-9").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "Correct-horse-9"));
        assert!(!verify_password(&h, "correct-horse-9"));
        assert!(!verify_password("not a hash", "x"));
        assert_ne!(h, hash_password("Correct-horse-9").unwrap(), "salted");
    }

    #[test]
    fn secrets_are_random_and_kept_as_hashes() {
        let (a, b) = (new_secret("hrs_"), new_secret("hrs_"));
        assert!(a.starts_with("hrs_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }

    #[test]
    fn the_password_policy() {
        assert!(check_password("Short-1", "li", 10, 3).is_err());
        assert!(check_password("alllowercaseletters", "li", 10, 3).is_err());
        assert!(
            check_password("Wang-Duty-2026", "wang", 10, 3).is_err(),
            "holds the name"
        );
        assert!(check_password("Duty-Officer-2026", "wang", 10, 3).is_ok());
        assert!(check_password("值班员Duty2026!", "li", 10, 3).is_ok());
    }
}
