//! The incident table: the engine's transitions and operators' actions turned into incident
//! events, each stored with its incident (made storable where the store refuses) and announced.

use super::lifecycle::{self, cause_key, IncidentRecord};
use super::{Action, Core, CoreError};
use std::time::Instant;
use telemetry::IncidentEvent;

/// Text fields of an incident made storable (no NUL) and bounded (messages, notes and names
/// at most 4,096 characters): what carried a device's bad bytes into an incident must not
/// keep the incident out of the store.
fn sanitize_incident(i: &mut telemetry::Incident) {
    fn clean(s: &mut String) {
        let mut t = crate::store::storable(s).into_owned();
        if t.chars().count() > 4096 {
            t = t.chars().take(4096).collect();
        }
        *s = t;
    }
    clean(&mut i.message);
    for s in [
        &mut i.note,
        &mut i.acked_by,
        &mut i.closed_by,
        &mut i.assigned_to,
        &mut i.zone,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
    for w in &mut i.warnings {
        clean(w);
    }
}

impl Core {
    pub(super) async fn apply_transitions(&mut self) -> Result<Vec<IncidentEvent>, CoreError> {
        let transitions = std::mem::take(&mut self.scratch);
        let mut out = Vec::new();
        for t in &transitions {
            let key = cause_key(&t.cause);
            let open = self.open.remove(&key);
            let previous = if open.is_none() {
                self.last_incident.get(&key).cloned()
            } else {
                None
            };
            let Some((rec, ev)) =
                lifecycle::apply_transition(open.clone(), t, previous, self.language)
            else {
                if let Some(rec) = open {
                    self.open.insert(key, rec);
                }
                continue;
            };
            let mut rec = rec;
            let raised_new = ev.event == telemetry::EventKind::Raised;
            if raised_new {
                self.recent_raises
                    .push_back((self.clock.now(), key.clone()));
            }
            let mut stored = self.persist(&key, &mut rec, ev).await?;
            if raised_new {
                // A point out of service for maintenance: its incident is shelved until the
                // maintenance ends, and says so. A critical incident is never hidden.
                let oos = rec.incident.point.as_ref().and_then(|p| {
                    self.live
                        .read()
                        .expect("live lock")
                        .out_of_service
                        .get(&(rec.incident.site.clone(), p.clone()))
                        .cloned()
                });
                if let Some(o) = oos {
                    if rec.incident.severity < telemetry::Severity::Critical {
                        let reason = format!("point out of service: {}", o.reason);
                        if let Ok(ev) = lifecycle::shelve(
                            &mut rec,
                            &o.by,
                            &reason,
                            o.until,
                            t.at.min(o.until - chrono::Duration::milliseconds(1)),
                        ) {
                            stored = self.persist(&key, &mut rec, ev).await?;
                        }
                    } else {
                        self.metrics.critical_on_out_of_service.inc();
                        tracing::warn!(incident = %rec.incident.id, point = ?rec.incident.point, "critical incident on a point out of service: not shelved");
                    }
                }
            }
            if rec.incident.state.is_standing() {
                self.open_ids.insert(rec.incident.id.clone(), key.clone());
                self.last_incident
                    .insert(key.clone(), rec.incident.id.clone());
                self.open.insert(key, rec);
            } else {
                self.open_ids.remove(&rec.incident.id);
            }
            out.push(stored);
        }
        self.scratch = transitions;
        self.scratch.clear();
        self.update_open_gauge();
        Ok(out)
    }

    pub(super) async fn persist(
        &mut self,
        key: &str,
        rec: &mut IncidentRecord,
        mut ev: IncidentEvent,
    ) -> Result<IncidentEvent, CoreError> {
        let started = Instant::now();
        let mut pos = durably!(self, "incident", self.store.write_change(key, rec, &ev));
        if let Err(e) = &pos {
            // An incident is never dropped: what the store refuses is made storable.
            if e.is_unique_violation() {
                // Its event id is taken (a store restored from elsewhere, a replay into a
                // used store): the event takes the next free seq of its incident.
                if let Ok(max) =
                    durably!(self, "incident", self.store.max_event_seq(&rec.incident.id))
                {
                    rec.last_event_seq = rec.last_event_seq.max(max);
                    rec.last_event_seq += 1;
                    ev.event_seq = rec.last_event_seq;
                    ev.event_id = format!("{}-{}", rec.incident.id, ev.event_seq);
                    tracing::warn!(incident = %rec.incident.id, event_id = %ev.event_id, "event id was taken in the store; the event takes the next seq");
                }
            }
            sanitize_incident(&mut rec.incident);
            sanitize_incident(&mut ev.incident);
            pos = durably!(self, "incident", self.store.write_change(key, rec, &ev));
        }
        let pos = match pos {
            Ok(pos) => Some(pos),
            Err(e) => {
                // Still refused (no known cause leads here: its text is storable and its id
                // free): the incident stands in the core's memory, so its cause is neither
                // raised twice nor lost, but no reader of the log sees this event. The log
                // says so loudly, the refusal is counted, and judging goes on.
                tracing::error!(incident = %rec.incident.id, error = %e, "incident event not stored; it is held in memory only");
                None
            }
        };
        self.metrics
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .incident_events
            .with_label_values(&[ev.event.as_str()])
            .inc();
        tracing::info!(incident = %rec.incident.id, event = ev.event.as_str(), site = %rec.incident.site,
            rule = %rec.incident.rule, severity = %rec.incident.severity, "{}", rec.incident.message);
        if let Some(pos) = pos {
            let _ = self.events.send((pos, ev.clone()));
            self.event_written.notify_one();
        }
        Ok(ev)
    }

    pub(super) fn update_open_gauge(&self) {
        for sev in telemetry::Severity::ALL {
            let n = self
                .open
                .values()
                .filter(|r| r.incident.severity == sev)
                .count();
            self.metrics
                .incidents_open
                .with_label_values(&[sev.as_str()])
                .set(n as i64);
        }
    }

    /// An operator's action. `Ok(None)`: nothing changed (a repeated acknowledgement).
    pub async fn act(
        &mut self,
        id: &str,
        action: Action,
    ) -> Result<(telemetry::Incident, Option<IncidentEvent>), CoreError> {
        let now = self.now();
        let (key, mut rec, standing) = match self.open_ids.get(id).cloned() {
            Some(key) => {
                let rec = self
                    .open
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                (key, rec, true)
            }
            None => {
                let rec = self
                    .store
                    .incident(id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                let key = self
                    .store
                    .cause_of(id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                (key, rec, false)
            }
        };
        let ev = match action {
            Action::Ack { operator, note } => {
                lifecycle::acknowledge(&mut rec, &operator, note.as_deref(), now)?
            }
            Action::Close { operator, note } => {
                Some(lifecycle::close(&mut rec, &operator, note.as_deref(), now)?)
            }
            Action::Comment { operator, text } => {
                Some(lifecycle::comment(&mut rec, &operator, &text, now)?)
            }
            Action::Assign { operator, assignee } => {
                Some(lifecycle::assign(&mut rec, &operator, &assignee, now)?)
            }
            Action::Shelve {
                operator,
                reason,
                until,
            } => Some(lifecycle::shelve(&mut rec, &operator, &reason, until, now)?),
            Action::Unshelve { operator } => lifecycle::unshelve(&mut rec, Some(&operator), now),
            Action::Notified { tier } => lifecycle::notified(&mut rec, &tier, now), // forwarding (issue 9)
        };
        let Some(ev) = ev else {
            return Ok((rec.incident, None));
        };
        let ev = self.persist(&key, &mut rec, ev).await?;
        if standing {
            self.open.insert(key, rec.clone());
        }
        Ok((rec.incident, Some(ev)))
    }
}
