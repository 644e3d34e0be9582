//! The core's inbox: what other parts of the gateway ask of the core, in arrival order, and
//! [`CoreHandle`], the typed way to ask it (every part outside the core uses this).

use super::{Action, CoreError};
use rumqttc::Publish;
use telemetry::{Incident, IncidentEvent};
use tokio::sync::{mpsc, oneshot};

pub type ActReply = Result<(Incident, Option<IncidentEvent>), CoreError>;

/// What the core task is asked to do, in arrival order.
pub enum Command {
    /// An MQTT message; acknowledged to the broker once processed.
    Message(Publish),
    /// A weather document posted over HTTP (`cap` or `cenc`).
    Weather {
        kind: &'static str,
        body: Vec<u8>,
        reply: oneshot::Sender<Result<weather::Outcome, CoreError>>,
    },
    Act {
        id: String,
        action: Action,
        reply: oneshot::Sender<ActReply>,
    },
    Reload {
        reply: oneshot::Sender<Result<usize, String>>,
    },
    /// The levels the site's points are judged against now (a person's view of the rules).
    SiteLevels {
        site: telemetry::SiteId,
        reply: oneshot::Sender<SiteLevels>,
    },
    /// Take a point out of service until a time, or back into service.
    OutOfService {
        change: ServiceChange,
        reply: oneshot::Sender<Result<Option<crate::core::live::OutOfService>, CoreError>>,
    },
}

/// A change of a point's service: out of service until a time (by an operator, for a reason),
/// or back into service (`until` None).
#[derive(Debug, Clone)]
pub struct ServiceChange {
    pub site: telemetry::SiteId,
    pub point: telemetry::PointId,
    pub by: String,
    pub reason: String,
    pub until: Option<telemetry::Timestamp>,
}

impl ServiceChange {
    /// Back into service, by the gateway (an out-of-service period that ended).
    pub fn back_in_service(site: telemetry::SiteId, point: telemetry::PointId) -> ServiceChange {
        ServiceChange {
            site,
            point,
            by: String::new(),
            reason: String::new(),
            until: None,
        }
    }
}

/// Each point of a site with the threshold levels it is judged against now.
pub type SiteLevels = Vec<(telemetry::PointId, Vec<alarm_rules::PointLevel>)>;

/// Why the core gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("the gateway is stopping")]
    Stopping,
    #[error("the gateway is busy; try again")]
    Busy,
}

/// How long a caller waits for the core's answer.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The typed way to ask the core (the single writer of the gateway's state): every part of
/// the gateway outside the core holds one of these, none sends [`Command`]s of its own.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
}

impl CoreHandle {
    /// A handle and the core's end of its inbox, bounded at `capacity` (callers wait when full).
    pub fn channel(capacity: usize) -> (CoreHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(capacity);
        (CoreHandle { tx }, rx)
    }

    /// Room for one MQTT message in the inbox (the ingest waits for it, then sends).
    pub async fn reserve_message(&self) -> Result<mpsc::Permit<'_, Command>, AskError> {
        self.tx.reserve().await.map_err(|_| AskError::Stopping)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, AskError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(command(reply))
            .await
            .map_err(|_| AskError::Stopping)?;
        tokio::time::timeout(ANSWER_WITHIN, answer)
            .await
            .map_err(|_| AskError::Busy)?
            .map_err(|_| AskError::Stopping)
    }

    /// An operator's action (or an escalation's `notified`) on an incident.
    pub async fn act(&self, id: String, action: Action) -> Result<ActReply, AskError> {
        self.ask(|reply| Command::Act { id, action, reply }).await
    }

    /// A weather document (`cap` or `cenc`).
    pub async fn weather(
        &self,
        kind: &'static str,
        body: Vec<u8>,
    ) -> Result<Result<weather::Outcome, CoreError>, AskError> {
        self.ask(|reply| Command::Weather { kind, body, reply })
            .await
    }

    /// Reload the rule files; `Err` names why the new rules were refused (the old stay).
    pub async fn reload(&self) -> Result<Result<usize, String>, AskError> {
        self.ask(|reply| Command::Reload { reply }).await
    }

    /// The levels the site's points are judged against now, with the values and severities
    /// the site's active warnings give them.
    pub async fn site_levels(&self, site: telemetry::SiteId) -> Result<SiteLevels, AskError> {
        self.ask(|reply| Command::SiteLevels { site, reply }).await
    }

    /// Take a point out of service until a time, or back into service (`until` None).
    pub async fn out_of_service(
        &self,
        site: telemetry::SiteId,
        point: telemetry::PointId,
        by: String,
        reason: String,
        until: Option<telemetry::Timestamp>,
    ) -> Result<Result<Option<crate::core::live::OutOfService>, CoreError>, AskError> {
        let change = ServiceChange {
            site,
            point,
            by,
            reason,
            until,
        };
        self.ask(|reply| Command::OutOfService { change, reply })
            .await
    }
}
