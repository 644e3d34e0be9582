//! Access records: users, API tokens, console sessions, the audit log, and the access
//! version that a running gateway watches to end streams of revoked credentials. Secrets are
//! never stored: password hashes (argon2id) and secret hashes (SHA-256) only.

use super::{run, timed, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user or a token as stored (`scopes` as text, `region:4105,site:mine-01`).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub role: String,
    pub scopes: String,
    /// Disabled user, revoked token.
    pub off: bool,
    pub created_ms: i64,
    pub created_by: String,
}

/// A user with what login needs.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub principal: Principal,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until_ms: i64,
}

/// A console session (found by the hash of its id).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub user: String,
    pub csrf: String,
    pub created_ms: i64,
    pub last_ms: i64,
}

/// One audit entry: who did what, when, from where, and how it ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub pos: i64,
    pub at_ms: i64,
    pub who: String,
    /// Where from: the peer address, or `cli`.
    pub source: String,
    /// e.g. `POST /api/v1/incidents/{id}/ack`, `login`, `token create`.
    pub action: String,
    pub target: Option<String>,
    pub site: Option<String>,
    /// The HTTP status, or `ok` / `refused`.
    pub outcome: String,
    pub detail: Option<String>,
}

fn principal(r: &AnyRow) -> Result<Principal> {
    Ok(Principal {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        scopes: r.try_get("scopes")?,
        off: r.try_get::<i64, _>("off")? != 0,
        created_ms: r.try_get("created_ms")?,
        created_by: r.try_get("created_by")?,
    })
}

const USER_COLUMNS: &str = "name, role, scopes, CAST(disabled AS BIGINT) AS off, created_ms, \
     created_by, password_hash, CAST(failed_logins AS BIGINT) AS failed_logins, locked_until_ms";
const TOKEN_COLUMNS: &str =
    "name, role, scopes, CAST(revoked AS BIGINT) AS off, created_ms, created_by";

fn user(r: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        principal: principal(r)?,
        password_hash: r.try_get("password_hash")?,
        failed_logins: r.try_get("failed_logins")?,
        locked_until_ms: r.try_get("locked_until_ms")?,
    })
}

impl Store {
    /// Add a user; `false` when the name is taken.
    pub async fn add_user(&self, p: &Principal, password_hash: &str) -> Result<bool> {
        self.add_principal(
            "INSERT INTO users (name, password_hash, role, scopes, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
            p,
            password_hash,
        )
        .await
    }

    /// Insert a user or a token with its secret's hash (`sql` names the table and column);
    /// `false` when the name is taken.
    async fn add_principal(&self, sql: &str, p: &Principal, secret_hash: &str) -> Result<bool> {
        let done = run(sqlx::query(sql)
            .bind(&p.name)
            .bind(secret_hash)
            .bind(&p.role)
            .bind(&p.scopes)
            .bind(p.created_ms)
            .bind(&p.created_by)
            .execute(self.pool()))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        timed(async {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
            let row = sqlx::query(&sql)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(user).transpose()
        })
        .await
    }

    pub async fn users(&self) -> Result<Vec<Principal>> {
        timed(async {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
            let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
            rows.iter().map(principal).collect()
        })
        .await
    }

    /// Record the outcome of a login: failures in a row and the end of a lockout.
    pub async fn set_login_failures(
        &self,
        name: &str,
        failed: i64,
        locked_until_ms: i64,
    ) -> Result<()> {
        timed(async {
            sqlx::query(
                "UPDATE users SET failed_logins = $1, locked_until_ms = $2 WHERE name = $3",
            )
            .bind(failed)
            .bind(locked_until_ms)
            .bind(name)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Disable a user and end its sessions; `false` when there is no such user.
    pub async fn disable_user(&self, name: &str) -> Result<bool> {
        self.switch_off(
            "UPDATE users SET disabled = 1 WHERE name = $1",
            Some("DELETE FROM sessions WHERE user_name = $1"),
            name,
        )
        .await
    }

    /// Switch off one named principal (`update`, then `then` such as ending its sessions) and
    /// bump the access version, in one transaction; `false` when no row matched.
    async fn switch_off(&self, update: &str, then: Option<&str>, name: &str) -> Result<bool> {
        timed(async {
            let mut tx = self.pool().begin().await?;
            let done = sqlx::query(update).bind(name).execute(&mut *tx).await?;
            if let Some(then) = then {
                sqlx::query(then).bind(name).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE access_version SET v = v + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Add a token (by the hash of its secret); `false` when the name is taken.
    pub async fn add_token(&self, p: &Principal, token_hash: &str) -> Result<bool> {
        self.add_principal(
            "INSERT INTO api_tokens (name, token_hash, role, scopes, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
            p,
            token_hash,
        )
        .await
    }

    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<Principal>> {
        self.token_where("token_hash", token_hash).await
    }

    pub async fn token(&self, name: &str) -> Result<Option<Principal>> {
        self.token_where("name", name).await
    }

    /// The token whose `column` (`name` or `token_hash`, never outside input) is `value`.
    async fn token_where(&self, column: &str, value: &str) -> Result<Option<Principal>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {column} = $1");
        let row = run(sqlx::query(&sql).bind(value).fetch_optional(self.pool())).await?;
        row.as_ref().map(principal).transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<Principal>> {
        timed(async {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name");
            let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
            rows.iter().map(principal).collect()
        })
        .await
    }

    /// Revoke a token; `false` when there is no such token.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        self.switch_off(
            "UPDATE api_tokens SET revoked = 1 WHERE name = $1",
            None,
            name,
        )
        .await
    }

    pub async fn add_session(&self, id_hash: &str, s: &SessionRecord) -> Result<()> {
        timed(async {
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_name, csrf, created_ms, last_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id_hash)
            .bind(&s.user)
            .bind(&s.csrf)
            .bind(s.created_ms)
            .bind(s.last_ms)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        timed(async {
            let row = sqlx::query(
                "SELECT user_name, csrf, created_ms, last_ms FROM sessions WHERE id_hash = $1",
            )
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await?;
            row.map(|r| {
                Ok(SessionRecord {
                    user: r.try_get(0)?,
                    csrf: r.try_get(1)?,
                    created_ms: r.try_get(2)?,
                    last_ms: r.try_get(3)?,
                })
            })
            .transpose()
        })
        .await
    }

    pub async fn touch_session(&self, id_hash: &str, now_ms: i64) -> Result<()> {
        timed(async {
            sqlx::query("UPDATE sessions SET last_ms = $1 WHERE id_hash = $2")
                .bind(now_ms)
                .bind(id_hash)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    /// End a session (logout, expiry).
    pub async fn end_session(&self, id_hash: &str) -> Result<()> {
        timed(async {
            let mut tx = self.pool().begin().await?;
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE access_version SET v = v + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Bumped on every revocation.
    pub async fn access_version(&self) -> Result<i64> {
        timed(async {
            let row = sqlx::query("SELECT v FROM access_version WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
        .await
    }

    pub async fn add_audit(&self, e: &AuditEntry) -> Result<()> {
        timed(async {
            sqlx::query(
                "INSERT INTO audit_log (at_ms, who, source, action, target, site, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.at_ms)
            .bind(super::storable(&e.who).as_ref())
            .bind(super::storable(&e.source).as_ref())
            .bind(super::storable(&e.action).as_ref())
            .bind(e.target.as_deref().map(|t| super::storable(t).into_owned()))
            .bind(e.site.as_deref())
            .bind(super::storable(&e.outcome).as_ref())
            .bind(e.detail.as_deref().map(|d| super::storable(d).into_owned()))
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Audit entries, newest first, before position `before` (when set).
    pub async fn audit(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>> {
        timed(async {
            let rows = sqlx::query(
                "SELECT pos, at_ms, who, source, action, target, site, outcome, detail \
                 FROM audit_log WHERE pos < $1 ORDER BY pos DESC LIMIT $2",
            )
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        pos: r.try_get(0)?,
                        at_ms: r.try_get(1)?,
                        who: r.try_get(2)?,
                        source: r.try_get(3)?,
                        action: r.try_get(4)?,
                        target: r.try_get(5)?,
                        site: r.try_get(6)?,
                        outcome: r.try_get(7)?,
                        detail: r.try_get(8)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Delete audit entries before `before_ms` and sessions idle since before `idle_before_ms`;
    /// returns the audit entries deleted.
    pub async fn prune_access(&self, before_ms: i64, idle_before_ms: i64) -> Result<u64> {
        timed(async {
            let done = sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
                .bind(before_ms)
                .execute(self.pool())
                .await?;
            sqlx::query("DELETE FROM sessions WHERE last_ms < $1")
                .bind(idle_before_ms)
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{AuditEntry, Principal, SessionRecord};
    use crate::store::Store;

    fn entry(at_ms: i64, who: &str) -> AuditEntry {
        AuditEntry {
            pos: 0,
            at_ms,
            who: who.into(),
            source: "127.0.0.1:1".into(),
            action: "POST /api/v1/incidents/{id}/ack".into(),
            target: Some("/api/v1/incidents/x/ack".into()),
            site: Some("mine-01".into()),
            outcome: "200".into(),
            detail: None,
        }
    }

    /// Entries past their retention and idle sessions go; the rest stays, newest first.
    #[tokio::test]
    async fn pruning_keeps_what_is_within_retention() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        for (at, who) in [(1_000, "old"), (5_000, "kept"), (9_000, "new")] {
            store.add_audit(&entry(at, who)).await.unwrap();
        }
        let p = Principal {
            name: "wang".into(),
            role: "operator".into(),
            scopes: "*".into(),
            off: false,
            created_ms: 0,
            created_by: "cli".into(),
        };
        assert!(store.add_user(&p, "hash").await.unwrap());
        assert!(
            !store.add_user(&p, "hash").await.unwrap(),
            "a name is taken once"
        );
        for (id, last) in [("idle", 100), ("busy", 8_000)] {
            let s = SessionRecord {
                user: "wang".into(),
                csrf: "c".into(),
                created_ms: 0,
                last_ms: last,
            };
            store.add_session(id, &s).await.unwrap();
        }
        assert_eq!(store.prune_access(4_000, 1_000).await.unwrap(), 1);
        let left: Vec<String> = store
            .audit(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.who)
            .collect();
        assert_eq!(left, ["new", "kept"]);
        assert!(store.session("idle").await.unwrap().is_none());
        assert!(store.session("busy").await.unwrap().is_some());
        let v = store.access_version().await.unwrap();
        assert!(store.disable_user("wang").await.unwrap());
        assert!(
            store.session("busy").await.unwrap().is_none(),
            "its sessions end"
        );
        assert!(
            store.access_version().await.unwrap() > v,
            "the running gateway is told"
        );
    }
}
