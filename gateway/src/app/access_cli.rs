//! `gateway user ...` and `gateway token ...`: users and tokens in the configured store, while
//! a gateway runs on it or not (a running gateway sees a revocation within `auth.recheck_ms`
//! on its open streams, and at once on every request). Each change is audited with source
//! `cli`.

use crate::access::{parse_scopes, Access, Caller, Credential, Grant, Role};
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::store::Store;
use anyhow::{bail, Context};
use std::io::BufRead;
use std::str::FromStr;

/// What the command line asks.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessCommand {
    UserAdd {
        name: String,
        role: String,
        scope: String,
    },
    UserDisable {
        name: String,
    },
    UserList,
    TokenCreate {
        name: String,
        role: String,
        scope: String,
    },
    TokenRevoke {
        name: String,
    },
    TokenList,
}

/// The command line acts as the machine's administrator over every site (whoever may run it
/// may read the store anyway); its audit entries name the operating-system user.
fn cli_caller() -> Caller {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Caller {
        name: format!("cli:{user}"),
        grant: Grant::everything(),
        credential: Credential::Open,
    }
}

fn grant(role: &str, scope: &str) -> anyhow::Result<Grant> {
    Ok(Grant {
        role: Role::from_str(role).map_err(anyhow::Error::msg)?,
        scopes: parse_scopes(scope).map_err(anyhow::Error::msg)?,
    })
}

/// Run one command; what it prints goes to `out` (a new token: alone on one line).
pub async fn run(
    config: &GatewayConfig,
    clock: SharedClock,
    cmd: AccessCommand,
    password_input: &mut dyn BufRead,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url())
        .await
        .context("opening the store")?;
    let (access, _watcher) = Access::start(
        config.auth.clone(),
        store.clone(),
        clock,
        tokio_util::sync::CancellationToken::new(),
    );
    let by = cli_caller();
    let every_region = |_: &telemetry::SiteId| None;
    let audit = |action: &'static str, name: String| {
        let (access, by) = (access.clone(), by.clone());
        async move {
            access
                .audit(&by.name, "cli", action, Some(&name), None, "ok", None)
                .await
        }
    };
    match cmd {
        AccessCommand::UserAdd { name, role, scope } => {
            let grant = grant(&role, &scope)?;
            let mut password = String::new();
            password_input
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            access
                .add_user(&by, &name, &grant, password, &every_region)
                .await?;
            audit("user add", name.clone()).await;
            writeln!(out, "user {name} added ({role} over {scope})")?;
        }
        AccessCommand::UserDisable { name } => {
            if !store.disable_user(&name).await? {
                bail!("no user {name}");
            }
            audit("user disable", name.clone()).await;
            writeln!(out, "user {name} disabled; its sessions are ended")?;
        }
        AccessCommand::TokenCreate { name, role, scope } => {
            let grant = grant(&role, &scope)?;
            let token = access.add_token(&by, &name, &grant, &every_region).await?;
            audit("token create", name.clone()).await;
            // Alone on its line: the only time it is shown.
            writeln!(out, "{token}")?;
        }
        AccessCommand::TokenRevoke { name } => {
            if !store.revoke_token(&name).await? {
                bail!("no token {name}");
            }
            audit("token revoke", name.clone()).await;
            writeln!(out, "token {name} revoked")?;
        }
        AccessCommand::UserList | AccessCommand::TokenList => {
            let list = if cmd == AccessCommand::UserList {
                store.users().await?
            } else {
                store.tokens().await?
            };
            for p in list {
                let state = if p.off { "off" } else { "on" };
                writeln!(out, "{}\t{}\t{}\t{state}", p.name, p.role, p.scopes)?;
            }
        }
    }
    Ok(())
}
