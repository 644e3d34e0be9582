//! The TCP side of a JT/T 808 listener: accepting (bounded), one task per connection (idle
//! timeout, bounded answers), and the vehicle agents ("births") its readings go to.
//!
//! Queues and their policies:
//! - connections: at most `max_connections`; one more is closed at once and counted
//!   (`hrs_jt808_connections_refused_total{reason="limit"}`).
//! - per connection, answers waiting: at most `answer_queue`; when full the socket is not
//!   read (the terminal's TCP window fills; nothing is dropped).
//! - connections -> each birth's batcher: `ingest_queue` messages; when full the connection
//!   waits (back-pressure to the terminal, nothing is dropped).
//! - a report is answered (0x8001 result 0) only once the batch holding its readings is in
//!   the birth's durable buffer; if storing fails it is answered result 1 and the terminal
//!   sends it again. A terminal therefore never deletes a report the agent does not have.

use super::auth::{codes_match, AuthStore};
use super::config::Jt808Config;
use super::points::{location_readings, shard_of, Fleet, Noted};
use super::session::{Session, Step};
use crate::clock::SharedClock;
use crate::durable::DurableReadings;
use crate::metrics::AgentMetrics;
use ::jt808::message::registration_result;
use ::jt808::Header;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemetry::SiteId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bound on writing one answer to a terminal.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One birth (vehicle agent) of a listener, as the connections see it.
#[derive(Clone)]
pub struct BirthInput {
    pub agent: String,
    pub ingest: mpsc::Sender<DurableReadings>,
    pub version: Arc<watch::Sender<u64>>,
}

/// What every connection of a listener shares.
pub struct ListenerContext {
    pub cfg: Arc<Jt808Config>,
    pub site: SiteId,
    pub fleet: Arc<Mutex<Fleet>>,
    pub store: AuthStore,
    pub births: Vec<BirthInput>,
    pub metrics: AgentMetrics,
    pub clock: SharedClock,
}

impl ListenerContext {
    /// Take a vehicle into its birth; if the birth changed, tell its publisher (before any
    /// reading of the vehicle is sent to its batcher).
    fn note(&self, terminal: &str, plate: Option<&str>, driver: Option<(String, String)>) {
        let mut f = self.fleet.lock().expect("fleet lock");
        if let Noted::Changed(k) = f.note(terminal, plate, driver) {
            self.births[k].version.send_modify(|v| *v += 1);
        }
        self.metrics.jt808_vehicles.set(f.vehicles() as i64);
        self.metrics
            .jt808_vehicles_uncatalogued
            .set(f.uncatalogued() as i64);
    }

    fn knows(&self, terminal: &str) -> bool {
        self.fleet
            .lock()
            .expect("fleet lock")
            .catalogued(terminal)
            .is_some()
    }

    fn driver_of(&self, terminal: &str) -> Option<(String, String)> {
        self.fleet
            .lock()
            .expect("fleet lock")
            .catalogued(terminal)
            .and_then(|v| v.driver.clone())
    }
}

/// Accept connections until `cancel`; then wait (bounded) for the connection tasks to end.
pub async fn serve(listener: TcpListener, ctx: Arc<ListenerContext>, cancel: CancellationToken) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, site = %ctx.site, births = ctx.births.len(), "jt808 listening");
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    if active.load(Ordering::SeqCst) >= ctx.cfg.max_connections {
                        ctx.metrics.jt808_connections_refused_total.with_label_values(&["limit"]).inc();
                        tracing::warn!(%peer, max = ctx.cfg.max_connections, "jt808 connection refused: limit reached");
                        drop(stream);
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    ctx.metrics.jt808_connections.inc();
                    let (ctx, cancel, active) = (ctx.clone(), cancel.clone(), active.clone());
                    tasks.spawn(async move {
                        let reason = connection(stream, peer, &ctx, &cancel).await;
                        ctx.metrics.jt808_connections_closed_total.with_label_values(&[reason]).inc();
                        ctx.metrics.jt808_connections.dec();
                        active.fetch_sub(1, Ordering::SeqCst);
                        tracing::debug!(%peer, reason, "jt808 connection closed");
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "jt808 accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

enum Answer {
    Ready(Vec<u8>),
    /// Waiting for the batch that holds its readings to be stored.
    Stored {
        header: Header,
        rx: oneshot::Receiver<bool>,
    },
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), &'static str> {
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("error"),
        Err(_) => Err("write_timeout"),
    }
}

/// One connection; returns why it ended.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &ListenerContext,
    cancel: &CancellationToken,
) -> &'static str {
    let _ = stream.set_nodelay(true);
    let cfg = &ctx.cfg;
    let mut session = Session::new(cfg);
    let mut answers: VecDeque<Answer> = VecDeque::new();
    let mut buf = vec![0u8; 4096];
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let mut idle_deadline = Instant::now() + idle;
    let mut closing: Option<&'static str> = None;
    loop {
        // Send every answer that is ready, in order.
        while let Some(front) = answers.front_mut() {
            let bytes = match front {
                Answer::Ready(b) => std::mem::take(b),
                Answer::Stored { header, rx } => match rx.try_recv() {
                    Ok(ok) => stored_answer(ctx, &mut session, header, ok),
                    Err(oneshot::error::TryRecvError::Empty) => break,
                    Err(oneshot::error::TryRecvError::Closed) => {
                        stored_answer(ctx, &mut session, header, false)
                    }
                },
            };
            answers.pop_front();
            if let Err(reason) = write(&mut stream, &bytes).await {
                return reason;
            }
        }
        if let Some(reason) = closing {
            return reason;
        }
        let waiting_store = matches!(answers.front(), Some(Answer::Stored { .. }));
        let can_read = answers.len() < cfg.answer_queue;
        tokio::select! {
            _ = cancel.cancelled() => return "stopping",
            _ = tokio::time::sleep_until(idle_deadline) => return "idle",
            r = async {
                match answers.front_mut() {
                    Some(Answer::Stored { rx, .. }) => rx.await.unwrap_or(false),
                    _ => std::future::pending().await,
                }
            }, if waiting_store => {
                if let Some(Answer::Stored { header, .. }) = answers.front() {
                    let header = header.clone();
                    let bytes = stored_answer(ctx, &mut session, &header, r);
                    answers[0] = Answer::Ready(bytes);
                }
            }
            r = stream.read(&mut buf), if can_read => match r {
                Ok(0) => return "peer",
                Err(_) => return "error",
                Ok(n) => {
                    idle_deadline = Instant::now() + idle;
                    let steps = session.push(&buf[..n], Instant::now().into_std());
                    for step in steps {
                        if let Some(reason) = do_step(ctx, &mut session, &mut answers, step, peer).await {
                            closing = Some(reason);
                            break;
                        }
                    }
                }
            },
        }
    }
}

fn stored_answer(
    ctx: &ListenerContext,
    session: &mut Session,
    header: &Header,
    ok: bool,
) -> Vec<u8> {
    if !ok {
        ctx.metrics
            .jt808_messages_refused_total
            .with_label_values(&["not_stored"])
            .inc();
    }
    session.stored(header, ok)
}

/// Do one step; `Some(reason)` to close the connection.
async fn do_step(
    ctx: &ListenerContext,
    session: &mut Session,
    answers: &mut VecDeque<Answer>,
    step: Step,
    peer: SocketAddr,
) -> Option<&'static str> {
    let m = &ctx.metrics;
    let site = ctx.site.as_str();
    match step {
        Step::Answer(b) => answers.push_back(Answer::Ready(b)),
        Step::Received(kind) => m.jt808_messages_total.with_label_values(&[kind]).inc(),
        Step::Refused(reason, detail) => {
            m.jt808_frames_refused_total
                .with_label_values(&[reason])
                .inc();
            tracing::info!(%peer, reason, %detail, "jt808 frame refused");
        }
        Step::Register {
            header,
            registration,
        } => {
            let terminal = header.terminal().to_string();
            let listed = ctx.fleet.lock().expect("fleet lock").is_listed(&terminal);
            if !ctx.cfg.accept_unlisted && !listed {
                m.jt808_registrations_total
                    .with_label_values(&["refused"])
                    .inc();
                tracing::warn!(%peer, terminal, "jt808 registration refused: terminal not listed");
                let a = session.registered(&header, Err(registration_result::NO_SUCH_TERMINAL));
                answers.push_back(Answer::Ready(a));
                return None;
            }
            let plate = registration.plate.trim().to_string();
            let plate = (!plate.is_empty()).then_some(plate);
            let now_ms = ctx.clock.now().timestamp_millis();
            match ctx
                .store
                .register(site, &terminal, plate.as_deref(), now_ms)
                .await
            {
                Ok(code) => {
                    m.jt808_registrations_total.with_label_values(&["ok"]).inc();
                    let driver = ctx.driver_of(&terminal);
                    ctx.note(&terminal, plate.as_deref(), driver);
                    tracing::info!(%peer, terminal, plate = ?plate, "jt808 terminal registered");
                    answers.push_back(Answer::Ready(session.registered(&header, Ok(&code))));
                }
                Err(e) => {
                    // Not answered: the terminal registers again.
                    m.jt808_registrations_total
                        .with_label_values(&["store_error"])
                        .inc();
                    tracing::error!(%peer, terminal, error = %e, "jt808 registration not stored");
                }
            }
        }
        Step::Authenticate { header, code } => {
            let terminal = header.terminal().to_string();
            let known = ctx.store.get(site, &terminal);
            let ok = known.as_ref().is_some_and(|r| codes_match(&r.code, &code));
            let outcome = match (&known, ok) {
                (_, true) => "ok",
                (None, _) => "unknown_terminal",
                _ => "wrong_code",
            };
            m.jt808_auth_total.with_label_values(&[outcome]).inc();
            if ok {
                let r = known.expect("known");
                let driver = r.driver.clone().zip(r.driver_license.clone());
                ctx.note(&terminal, r.plate.as_deref(), driver);
                tracing::info!(%peer, terminal, "jt808 terminal authenticated");
            } else {
                tracing::warn!(%peer, terminal, outcome, "jt808 authentication refused");
            }
            let (a, close) = session.authenticated(&header, ok);
            answers.push_back(Answer::Ready(a));
            if close {
                return Some("auth_failures");
            }
        }
        Step::Unauthenticated { terminal, answer } => {
            m.jt808_messages_refused_total
                .with_label_values(&["unauthenticated"])
                .inc();
            tracing::debug!(%peer, terminal, "jt808 message of a terminal that has not authenticated");
            answers.push_back(Answer::Ready(answer));
        }
        Step::Reports {
            header,
            terminal,
            locations,
            blind_area,
        } => {
            if !ctx.knows(&terminal) {
                // Without auth_required, a terminal may report without registering.
                ctx.note(&terminal, None, None);
            }
            let now = ctx.clock.now();
            let readings: Vec<_> = locations
                .iter()
                .flat_map(|l| location_readings(&terminal, l, now))
                .collect();
            m.jt808_reports_total.inc_by(locations.len() as u64);
            if blind_area {
                tracing::debug!(
                    terminal,
                    reports = locations.len(),
                    "jt808 blind-area reports"
                );
            }
            let (tx, rx) = oneshot::channel();
            let k = shard_of(&terminal, ctx.births.len() as u16);
            let sent = ctx.births[k]
                .ingest
                .send(DurableReadings {
                    readings,
                    done: Some(tx),
                })
                .await;
            if sent.is_err() {
                // The batcher is gone (stopping): not answered, the terminal sends again.
                return Some("stopping");
            }
            answers.push_back(Answer::Stored { header, rx });
        }
        Step::Driver {
            header,
            terminal,
            identity,
        } => {
            let driver = match (&identity.status, &identity.driver) {
                (1, Some(d)) if identity.ic_result == Some(0) => {
                    Some(Some((d.name.clone(), d.licence.clone())))
                }
                (2, _) => Some(None),
                _ => None,
            };
            let mut ok = true;
            if let Some(driver) = driver {
                ok = ctx
                    .store
                    .set_driver(
                        site,
                        &terminal,
                        driver.as_ref().map(|(n, l)| (n.as_str(), l.as_str())),
                    )
                    .await
                    .map_err(|e| tracing::error!(terminal, error = %e, "jt808 driver not stored"))
                    .is_ok();
                if ok {
                    let plate = ctx.store.get(site, &terminal).and_then(|r| r.plate);
                    tracing::info!(terminal, driver = ?driver.as_ref().map(|d| &d.0), "jt808 driver changed");
                    ctx.note(&terminal, plate.as_deref(), driver);
                }
            }
            answers.push_back(Answer::Ready(stored_answer(ctx, session, &header, ok)));
        }
        Step::Close(reason) => return Some(reason),
    }
    None
}
