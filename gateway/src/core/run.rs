//! The core's run loop: timers first, then messages in groups (processed in order, their seq
//! windows saved in one transaction, then acknowledged), operators' actions and reloads.

use super::handle::Command;
use super::{Core, Liveness};
use rumqttc::AsyncClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a reload takes the rules from (the files named by the config).
pub type RuleSource = Box<dyn Fn() -> anyhow::Result<alarm_rules::RuleSet> + Send + Sync>;

pub async fn run_core(
    mut core: Core,
    mut commands: mpsc::Receiver<Command>,
    client: AsyncClient,
    max_group: usize,
    rules: RuleSource,
    alive: Arc<Liveness>,
    shutdown: CancellationToken,
) {
    // Whatever way the loop ends (a panic included), `/readyz` says so at once.
    struct Ended(Arc<Liveness>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.end();
        }
    }
    let _ended = Ended(alive.clone());
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // A group holds at most what the broker may have in flight to us.
    let max_group = max_group.clamp(1, 256);
    // A command taken from the queue while a group was gathered, to handle next.
    let mut next: Option<Command> = None;
    loop {
        alive.mark();
        let cmd = match next.take() {
            Some(c) => c,
            None => tokio::select! {
                biased;
                // Timers first (at most every 500 ms), so a queue that never empties under
                // load cannot hold back missing-data alarms or the end of a shelving.
                _ = ticker.tick() => {
                    if let Err(e) = core.tick().await {
                        tracing::error!(error = %e, "tick failed");
                    }
                    continue;
                }
                // Drain what was received before stopping: in-flight messages are finished and acknowledged.
                c = commands.recv() => match c { Some(c) => c, None => break },
                _ = shutdown.cancelled() => break,
            },
        };
        match cmd {
            Command::Message(first) => {
                // Group commit: the messages already waiting are processed in order, their seq
                // windows saved in one transaction, and only then are they acknowledged.
                core.begin_group();
                let mut taken = Vec::new();
                let mut handled = 0;
                let mut p = first;
                loop {
                    handled += 1;
                    if let Err(e) = core.handle_message(&p.topic, &p.payload).await {
                        // Store outages are ridden out inside and refusals dead-lettered: an
                        // error here is a defect. The message is dead-lettered with it and
                        // acknowledged, so one message can never hold up the rest.
                        tracing::error!(error = %e, topic = %p.topic, "message not processed; dead-lettered");
                        core.refuse_unprocessed(&p.topic, &p.payload, &e.to_string())
                            .await;
                    }
                    taken.push(p);
                    alive.mark();
                    if handled >= max_group {
                        break;
                    }
                    match commands.try_recv() {
                        Ok(Command::Message(q)) => p = q,
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                core.commit_group().await;
                for p in taken {
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, "acknowledgement not sent");
                    }
                }
            }
            Command::Weather { kind, body, reply } => {
                let _ = reply.send(core.handle_weather(kind, &body).await.map(|(o, _)| o));
            }
            Command::Act { id, action, reply } => {
                let _ = reply.send(core.act(&id, action).await);
            }
            Command::SiteLevels { site, reply } => {
                let _ = reply.send(core.site_levels(&site));
            }
            Command::OutOfService { change, reply } => {
                let _ = reply.send(core.set_out_of_service(change).await);
            }
            Command::Reload { reply } => {
                let r = match rules() {
                    Ok(rules) => {
                        let n = rules.len();
                        match core.reload_rules(rules).await {
                            Ok(_) => Ok(n),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(format!("{e:#}")),
                };
                let outcome = if r.is_ok() { "done" } else { "refused" };
                core.metrics
                    .reloads
                    .with_label_values(&["rules", outcome])
                    .inc();
                match &r {
                    Ok(n) => tracing::info!(rules = n, "rules reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "rule reload refused; the old rules stay in force")
                    }
                }
                let _ = reply.send(r);
            }
        }
    }
    tracing::info!("core stopped");
}
