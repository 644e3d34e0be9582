//! `[auth]`: who may use the API, and the login rules a graded-protection (等保 2.0) review
//! asks for.

use serde::{Deserialize, Serialize};

/// `tokens`: every request carries a token or a session (the default of `gateway run`);
/// `open`: every request acts as an admin named `anonymous` (the default of `gateway demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Tokens,
    Open,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `tokens` or `open` (`HRS_AUTH_MODE`).
    pub mode: AuthMode,
    /// Let `gateway run` in open mode listen on a non-loopback address (else it refuses).
    pub open_on_network: bool,
    /// When set, `/metrics` asks for `Authorization: Bearer` this (`HRS_AUTH_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// A console session ends after this long without a request.
    pub session_idle_ms: u64,
    /// A console session ends this long after login, however busy.
    pub session_max_ms: u64,
    /// Failed logins in a row that lock a user out.
    pub max_failed_logins: u32,
    /// How long a lockout lasts.
    pub lockout_ms: u64,
    /// Passwords: at least this many characters ...
    pub password_min_chars: usize,
    /// ... of at least this many of the classes lower case, upper case, digits, others.
    pub password_min_classes: usize,
    /// Audit entries older than this are deleted (three years by default: see `[retention]`).
    pub audit_retention_days: u32,
    /// Mark the session cookie `Secure` (set it when a TLS proxy fronts the gateway).
    pub secure_cookies: bool,
    /// How often open event streams re-check that their credential still holds (a revoked
    /// token or a disabled user ends them within this).
    pub recheck_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Tokens,
            open_on_network: false,
            metrics_token: None,
            session_idle_ms: 30 * 60_000,
            session_max_ms: 8 * 3_600_000,
            max_failed_logins: 5,
            lockout_ms: 15 * 60_000,
            password_min_chars: 10,
            password_min_classes: 3,
            audit_retention_days: 1095,
            secure_cookies: false,
            recheck_ms: 500,
        }
    }
}

impl AuthConfig {
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("HRS_AUTH_MODE") {
            self.mode = match v.as_str() {
                "tokens" => AuthMode::Tokens,
                "open" => AuthMode::Open,
                _ => anyhow::bail!("HRS_AUTH_MODE {v:?} is not tokens or open"),
            };
        }
        if let Some(v) = get("HRS_AUTH_METRICS_TOKEN") {
            self.metrics_token = Some(v);
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, v, min) in [
            ("auth.session_idle_ms", self.session_idle_ms, 1_000),
            ("auth.session_max_ms", self.session_max_ms, 1_000),
            ("auth.lockout_ms", self.lockout_ms, 1_000),
            ("auth.recheck_ms", self.recheck_ms, 50),
        ] {
            if v < min {
                anyhow::bail!("{key} must be at least {min}");
            }
        }
        if self.max_failed_logins == 0 {
            anyhow::bail!("auth.max_failed_logins must be at least 1");
        }
        if self.password_min_chars < 8 || !(1..=4).contains(&self.password_min_classes) {
            anyhow::bail!(
                "auth.password_min_chars must be at least 8 and auth.password_min_classes 1 to 4"
            );
        }
        if self.audit_retention_days == 0 {
            anyhow::bail!("auth.audit_retention_days must be at least 1");
        }
        Ok(())
    }
}
