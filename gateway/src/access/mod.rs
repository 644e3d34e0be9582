//! Who may see and do what. A request's credential (an API token, a console session, or
//! nothing in open mode) becomes a [`Caller`]: a name and a [`Grant`] (a role over scopes).
//! The API asks the caller's role of every route in one table and filters every list by the
//! caller's scopes; the operator of an action is the caller's name. Credentials are looked up
//! in the store on every request, so a revoked token or a disabled user is refused at once,
//! also when the command line did it while the gateway runs; open event streams re-check on
//! [`Access::changes`].

pub mod config;
pub mod grant;
pub mod secret;

use crate::clock::SharedClock;
use crate::store::access::{AuditEntry, Principal, SessionRecord};
use crate::store::{Store, StoreError};
pub use config::{AuthConfig, AuthMode};
pub use grant::{parse_scopes, scopes_text, Grant, RegionOf, Role, Scope};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The name every request acts as in open mode.
pub const ANONYMOUS: &str = "anonymous";
/// The session cookie of the console.
pub const SESSION_COOKIE: &str = "hrs_session";

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credential, or one that does not hold (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// What was asked is not allowed (400 for a bad request, 403 beyond the caller's grant).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Open,
    Token { name: String },
    Session { id_hash: String, csrf: String },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub grant: Grant,
    pub credential: Credential,
}

impl Caller {
    pub fn open() -> Caller {
        Caller {
            name: ANONYMOUS.into(),
            grant: Grant::everything(),
            credential: Credential::Open,
        }
    }
}

fn grant_of(p: &Principal) -> Result<Grant, AccessError> {
    // A stored grant that no longer parses (edited by hand) grants nothing.
    let bad =
        |e: String| AccessError::Refused(format!("the grant of {} is not valid: {e}", p.name));
    Ok(Grant {
        role: Role::from_str(&p.role).map_err(bad)?,
        scopes: parse_scopes(&p.scopes).map_err(bad)?,
    })
}

/// What a login gives: the session cookie's value (shown once) and its CSRF token.
pub struct Login {
    pub session: String,
    pub csrf: String,
    pub caller: Caller,
}

/// The access service: credentials checked against the store, logins with lockout, the
/// audit log.
#[derive(Clone)]
pub struct Access {
    pub config: AuthConfig,
    store: Store,
    clock: SharedClock,
    changes: watch::Receiver<i64>,
}

/// What a refused login is told, whatever the reason.
const LOGIN_REFUSED: AccessError =
    AccessError::Unauthenticated("wrong user or password, or the user is locked out for a while");

impl Access {
    /// The service, and a task (until `shutdown`) that watches the store's access version
    /// every `auth.recheck_ms` and prunes old audit entries and sessions hourly.
    pub fn start(
        config: AuthConfig,
        store: Store,
        clock: SharedClock,
        shutdown: CancellationToken,
    ) -> (Access, impl std::future::Future<Output = ()>) {
        let (tx, rx) = watch::channel(0);
        let access = Access {
            config,
            store,
            clock,
            changes: rx,
        };
        let a = access.clone();
        let watcher = async move {
            let mut tick = tokio::time::interval(Duration::from_millis(a.config.recheck_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune: Option<i64> = None;
            loop {
                tokio::select! { _ = shutdown.cancelled() => return, _ = tick.tick() => {} }
                match a.store.access_version().await {
                    Ok(v) => {
                        tx.send_if_modified(|cur| std::mem::replace(cur, v) != v);
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the access version"),
                }
                let now = a.clock.now().timestamp_millis();
                if last_prune.is_none_or(|t| now - t >= 3_600_000) {
                    last_prune = Some(now);
                    let keep = i64::from(a.config.audit_retention_days) * 86_400_000;
                    match a
                        .store
                        .prune_access(now - keep, now - a.config.session_idle_ms as i64)
                        .await
                    {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            deleted = n,
                            "audit entries past their retention deleted"
                        ),
                        Err(e) => tracing::warn!(error = %e, "pruning the audit log"),
                    }
                }
            }
        };
        (access, watcher)
    }

    pub fn is_open(&self) -> bool {
        self.config.mode == AuthMode::Open
    }

    /// Changes of the access version: an open stream re-checks its caller on each.
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.changes.clone()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The caller of a request: its bearer token, else its session cookie (`None`: neither
    /// was sent). In open mode everyone is [`Caller::open`].
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        session: Option<&str>,
    ) -> Result<Caller, AccessError> {
        if self.is_open() {
            return Ok(Caller::open());
        }
        if let Some(token) = bearer {
            return self.by_token(token).await;
        }
        if let Some(id) = session {
            return self.by_session(&secret::secret_hash(id), true).await;
        }
        Err(AccessError::Unauthenticated(
            "a credential is required: Authorization: Bearer TOKEN, or log in",
        ))
    }

    async fn by_token(&self, token: &str) -> Result<Caller, AccessError> {
        let p = self
            .store
            .token_by_hash(&secret::secret_hash(token))
            .await?
            .filter(|p| !p.off)
            .ok_or(AccessError::Unauthenticated(
                "the token is unknown or revoked",
            ))?;
        Ok(Caller {
            grant: grant_of(&p)?,
            credential: Credential::Token {
                name: p.name.clone(),
            },
            name: p.name,
        })
    }

    async fn by_session(&self, id_hash: &str, touch: bool) -> Result<Caller, AccessError> {
        const ENDED: AccessError =
            AccessError::Unauthenticated("the session has ended; log in again");
        let s = self.store.session(id_hash).await?.ok_or(ENDED)?;
        let now = self.now_ms();
        if now - s.last_ms > self.config.session_idle_ms as i64
            || now - s.created_ms > self.config.session_max_ms as i64
        {
            self.store.end_session(id_hash).await?;
            return Err(ENDED);
        }
        let u = self.store.user(&s.user).await?.ok_or(ENDED)?;
        if u.principal.off {
            return Err(ENDED);
        }
        // Idle time counts from the last request (written at most every few seconds).
        if touch && now - s.last_ms >= 5_000 {
            self.store.touch_session(id_hash, now).await?;
        }
        Ok(Caller {
            grant: grant_of(&u.principal)?,
            credential: Credential::Session {
                id_hash: id_hash.to_string(),
                csrf: s.csrf,
            },
            name: u.principal.name,
        })
    }

    /// Whether a caller's credential still holds (for open streams).
    pub async fn still_holds(&self, c: &Caller) -> bool {
        let now =
            match &c.credential {
                Credential::Open => return true,
                Credential::Token { name } => self.store.token(name).await.map(|t| {
                    t.is_some_and(|t| !t.off && grant_of(&t).ok() == Some(c.grant.clone()))
                }),
                Credential::Session { id_hash, .. } => {
                    return self.by_session(id_hash, false).await.is_ok()
                }
            };
        // A store error keeps the stream: it is not a revocation.
        now.unwrap_or(true)
    }

    /// Log in with a password: a session, or 401 (also while locked out: the same answer, so
    /// a guesser learns nothing). Failures in a row lock the user out for `auth.lockout_ms`.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        source: &str,
    ) -> Result<Login, AccessError> {
        let now = self.now_ms();
        let Some(u) = self.store.user(name).await? else {
            // As long as a real check, so timing does not tell which names exist.
            let _ = secret::verify_password(dummy_hash(), password);
            return Err(self.login_refused(name, source, "unknown user").await);
        };
        if u.principal.off {
            return Err(self.login_refused(name, source, "user disabled").await);
        }
        if u.locked_until_ms > now {
            return Err(self.login_refused(name, source, "locked out").await);
        }
        if !secret::verify_password(&u.password_hash, password) {
            let failed = u.failed_logins + 1;
            let locked = failed >= i64::from(self.config.max_failed_logins);
            let until = if locked {
                now + self.config.lockout_ms as i64
            } else {
                0
            };
            self.store
                .set_login_failures(name, if locked { 0 } else { failed }, until)
                .await?;
            let why = if locked {
                format!("wrong password ({failed} in a row): locked out")
            } else {
                format!("wrong password ({failed} in a row)")
            };
            return Err(self.login_refused(name, source, &why).await);
        }
        self.store.set_login_failures(name, 0, 0).await?;
        let session = secret::new_secret("s_");
        let csrf = secret::new_secret("");
        let id_hash = secret::secret_hash(&session);
        self.store
            .add_session(
                &id_hash,
                &SessionRecord {
                    user: name.to_string(),
                    csrf: csrf.clone(),
                    created_ms: now,
                    last_ms: now,
                },
            )
            .await?;
        self.audit(name, source, "login", None, None, "ok", None)
            .await;
        Ok(Login {
            caller: Caller {
                name: name.to_string(),
                grant: grant_of(&u.principal)?,
                credential: Credential::Session {
                    id_hash,
                    csrf: csrf.clone(),
                },
            },
            session,
            csrf,
        })
    }

    pub async fn logout(&self, c: &Caller, source: &str) -> Result<(), AccessError> {
        if let Credential::Session { id_hash, .. } = &c.credential {
            self.store.end_session(id_hash).await?;
            self.audit(&c.name, source, "logout", None, None, "ok", None)
                .await;
        }
        Ok(())
    }

    /// Create a user with `password` (checked against the policy); `by` grants it, and may
    /// grant only within its own grant.
    pub async fn add_user(
        &self,
        by: &Caller,
        name: &str,
        grant: &Grant,
        password: &str,
        region_of: RegionOf<'_>,
    ) -> Result<(), AccessError> {
        valid_name(name)?;
        secret::check_password(
            password,
            name,
            self.config.password_min_chars,
            self.config.password_min_classes,
        )
        .map_err(AccessError::Invalid)?;
        self.may_grant(by, grant, region_of)?;
        let hash = secret::hash_password(password).map_err(AccessError::Invalid)?;
        if !self
            .store
            .add_user(&self.principal(by, name, grant), &hash)
            .await?
        {
            return Err(AccessError::Invalid(format!(
                "a user {name} exists already"
            )));
        }
        Ok(())
    }

    /// Create a token; returns its secret (shown once, stored hashed).
    pub async fn add_token(
        &self,
        by: &Caller,
        name: &str,
        grant: &Grant,
        region_of: RegionOf<'_>,
    ) -> Result<String, AccessError> {
        valid_name(name)?;
        self.may_grant(by, grant, region_of)?;
        let token = secret::new_secret("hrs_");
        if !self
            .store
            .add_token(
                &self.principal(by, name, grant),
                &secret::secret_hash(&token),
            )
            .await?
        {
            return Err(AccessError::Invalid(format!(
                "a token {name} exists already"
            )));
        }
        Ok(token)
    }

    fn principal(&self, by: &Caller, name: &str, grant: &Grant) -> Principal {
        Principal {
            name: name.to_string(),
            role: grant.role.as_str().to_string(),
            scopes: scopes_text(&grant.scopes),
            off: false,
            created_ms: self.now_ms(),
            created_by: by.name.clone(),
        }
    }

    fn may_grant(
        &self,
        by: &Caller,
        grant: &Grant,
        region_of: RegionOf<'_>,
    ) -> Result<(), AccessError> {
        if by.grant.includes(grant, region_of) {
            Ok(())
        } else {
            Err(AccessError::Refused(format!(
                "{} may grant only within its own grant ({} over {})",
                by.name,
                by.grant.role,
                scopes_text(&by.grant.scopes)
            )))
        }
    }

    /// The grant of a user or token, for a caller who wants to change it: `None` when it does
    /// not exist or lies beyond the caller's grant (both: 404).
    pub async fn grant_of(
        &self,
        by: &Caller,
        principal: Option<Principal>,
        region_of: RegionOf<'_>,
    ) -> Option<Principal> {
        principal.filter(|p| {
            grant_of(p)
                .map(|g| by.grant.includes(&g, region_of))
                .unwrap_or(by.grant.covers_all())
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A refused login, audited with why; the caller is told only [`LOGIN_REFUSED`] (the same
    /// for every reason, so a refusal does not tell which names exist).
    async fn login_refused(&self, name: &str, source: &str, why: &str) -> AccessError {
        self.audit(name, source, "login", None, None, "refused", Some(why))
            .await;
        LOGIN_REFUSED
    }

    /// Write an audit entry (a failure to write is logged and counted by the store's errors,
    /// never fails the request that it records).
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        who: &str,
        source: &str,
        action: &str,
        target: Option<&str>,
        site: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) {
        let e = AuditEntry {
            pos: 0,
            at_ms: self.now_ms(),
            who: who.to_string(),
            source: source.to_string(),
            action: action.to_string(),
            target: target.map(str::to_string),
            site: site.map(str::to_string),
            outcome: outcome.to_string(),
            detail: detail.map(|d| d.chars().take(500).collect()),
        };
        if let Err(err) = self.store.add_audit(&e).await {
            tracing::error!(error = %err, action, who, "writing an audit entry failed");
        }
    }
}

/// An argon2id hash of a random password nobody has, to spend a login's time on unknown
/// names.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| secret::hash_password(&secret::new_secret("")).unwrap_or_default())
}

/// User and token names: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_name(name: &str) -> Result<(), AccessError> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        Ok(())
    } else {
        Err(AccessError::Invalid(format!(
            "name {:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'",
            name.chars().take(80).collect::<String>()
        )))
    }
}
