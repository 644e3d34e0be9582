//! Reading batches: the seq window of each agent epoch (duplicates, gaps; epochs in and out
//! of memory), live values, type checks, the time-series journal, the engine, group commit.

use super::live::PointLive;
use super::refusals::RefusedItem;
use super::seq::{SeqVerdict, SeqWindow};
use super::{Core, CoreError};
use std::time::Instant;
use telemetry::catalogue::ValueKind;
use telemetry::{decode_batch, AgentId, SiteId, Timestamp, Value};

/// The seq window of an agent epoch and when it last spoke (gateway clock).
pub(super) struct EpochWindow {
    pub(super) window: SeqWindow,
    pub(super) seen: Timestamp,
}

impl Core {
    pub(super) async fn handle_batch(
        &mut self,
        topic: &str,
        site: &SiteId,
        agent: &AgentId,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<(), CoreError> {
        let batch = match decode_batch(payload, Some(agent), now, &self.limits) {
            Ok(b) => b,
            Err(e) => {
                self.refuse_undecodable(topic, &e, payload).await;
                return Ok(());
            }
        };
        let key = (site.clone(), agent.clone(), batch.epoch.clone());
        self.load_epoch(&key, now).await;
        let window = &mut self
            .seqs
            .get_mut(&key)
            .expect("loaded by load_epoch")
            .window;
        let verdict = window.observe(batch.seq);
        let max_seq = window.max_seq();
        let window_body = serde_json::to_string(window).unwrap_or_default();
        match verdict {
            SeqVerdict::Duplicate | SeqVerdict::TooOld => {
                self.metrics.batches_duplicate.inc();
                let mut live = self.live.write().expect("live lock");
                live.site_mut(site)
                    .agents
                    .entry(agent.clone())
                    .or_default()
                    .duplicates += 1;
                return Ok(());
            }
            SeqVerdict::New { gap, filled_gap } => {
                self.metrics.seq_gaps.inc_by(gap);
                if filled_gap {
                    self.metrics.seq_gaps_filled.inc();
                }
                let mut live = self.live.write().expect("live lock");
                let a = live.site_mut(site).agents.entry(agent.clone()).or_default();
                a.gaps += gap;
                if a.epoch != batch.epoch {
                    a.arrivals.clear();
                }
                a.arrivals.record(now, batch.seq);
                a.completeness = a.arrivals.completeness(now);
                a.max_seq = max_seq;
                a.epoch = batch.epoch.clone();
                a.last_seen = Some(now);
                if let Some(newest) = batch.readings.iter().map(|r| r.ts).max() {
                    a.skew_ms = Some((now - newest).num_milliseconds());
                }
                drop(live);
                self.intervals
                    .batch(site.as_str(), agent.as_str(), &batch.epoch, batch.seq);
            }
        }
        // Every reading refused in this batch, for its one dead letter.
        let mut refused: Vec<RefusedItem> = batch
            .refused
            .iter()
            .map(|r| RefusedItem {
                index: r.index,
                point: r.point.clone(),
                code: r.error.code(),
                reason: r.error.to_string(),
                raw: r.raw.clone(),
            })
            .collect();
        let max_points = self.ingest.max_points_per_site;
        // The readings taken (by index), judged once their points are in the journal.
        let mut taken = Vec::with_capacity(batch.readings.len());
        {
            let mut live = self.live.write().expect("live lock");
            let s = live.site_mut(site);
            for (index, reading) in batch.readings.iter().enumerate() {
                if !s.points.contains_key(&reading.point) && s.points.len() >= max_points {
                    refused.push(RefusedItem::too_many_points(
                        &self.metrics,
                        index,
                        &reading.point,
                        site,
                        max_points,
                    ));
                    continue;
                }
                let entry = s
                    .points
                    .entry(reading.point.clone())
                    .or_insert_with(|| PointLive {
                        agent: agent.clone(),
                        spec: None,
                        value: None,
                        ts: None,
                        quality: None,
                        reason: None,
                    });
                if let Some(spec) = &entry.spec {
                    let ok = match (spec.quantity.value_kind(), &reading.value) {
                        (_, Value::Null) => true,
                        (ValueKind::Number, Value::Number(_)) => true,
                        (ValueKind::Bool, Value::Bool(_)) => true,
                        (ValueKind::Position, Value::Position(_)) => true,
                        _ => spec.quantity.as_str() == "flow" || !spec.quantity.is_known(),
                    };
                    if !ok {
                        refused.push(RefusedItem {
                            index,
                            point: Some(reading.point.to_string()),
                            code: "type_mismatch",
                            reason: format!(
                                "point {}: value does not fit quantity {}",
                                reading.point, spec.quantity
                            ),
                            raw: String::new(),
                        });
                        continue;
                    }
                } else {
                    self.metrics.readings_uncatalogued.inc();
                }
                if entry.ts.is_some_and(|t| reading.ts < t) {
                    self.metrics.readings_out_of_order.inc();
                } else {
                    entry.value = Some(reading.value);
                    entry.ts = Some(reading.ts);
                    entry.quality = Some(reading.quality);
                    entry.reason = reading.reason.clone();
                    s.trends.record(&reading.point, reading.ts, &reading.value);
                }
                entry.agent = agent.clone();
                self.metrics.readings_taken.inc();
                if let Some(ts) = &self.timeseries {
                    ts.record(
                        site,
                        agent,
                        reading,
                        entry.spec.as_ref(),
                        s.info.category.as_ref(),
                    ); // timeseries (issue 10)
                }
                taken.push(index);
            }
        }
        // The batch's points reach the time-series journal before anything is judged, its seq
        // recorded or the message acknowledged: a crash from here on loses none of them.
        self.journal_points().await;
        let eval_started = Instant::now();
        for index in taken {
            self.engine
                .on_reading(site, agent, &batch.readings[index], now, &mut self.scratch);
        }
        self.metrics
            .rule_evaluation_seconds
            .observe(eval_started.elapsed().as_secs_f64());
        if !refused.is_empty() {
            tracing::warn!(%site, %agent, seq = batch.seq, refused = refused.len(), first = %refused[0].reason, "readings refused");
        }
        self.refuse_items(topic, &refused).await;
        match &mut self.deferred_windows {
            // In a group: saved at its commit, before any of its messages is acknowledged.
            Some(windows) => {
                windows.insert(
                    (site.clone(), agent.clone(), batch.epoch.clone()),
                    window_body,
                );
            }
            None => {
                let row = (
                    site.to_string(),
                    agent.to_string(),
                    batch.epoch.clone(),
                    window_body,
                );
                self.save_windows(vec![row], now).await;
            }
        }
        Ok(())
    }

    /// Append the points recorded so far to the time-series journal, retrying with backoff
    /// while the append fails (a full or read-only disk; each failure counted in
    /// `hrs_timeseries_journal_failures_total`). Until it succeeds the message in hand is
    /// neither judged nor acknowledged: a gateway stopped meanwhile gets it again.
    async fn journal_points(&mut self) {
        let Some(ts) = &self.timeseries else { return };
        let mut backoff = retry::Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        );
        while let Err(e) = ts.sync() {
            let delay = backoff.next_delay();
            tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64,
                "time-series journal append failed; the message waits unacknowledged");
            tokio::time::sleep(delay).await;
        }
    }

    /// Make sure the seq window of an agent epoch is in memory: from the open group, the store
    /// (an epoch that left memory comes back with the seqs it had seen), or new. Keeps at
    /// most `max_epochs_per_agent` epochs of an agent in memory (the least recently used
    /// leaves; its window is in the store).
    pub(super) async fn load_epoch(&mut self, key: &(SiteId, AgentId, String), now: Timestamp) {
        if let Some(e) = self.seqs.get_mut(key) {
            e.seen = now;
            return;
        }
        let pending = self
            .deferred_windows
            .as_ref()
            .and_then(|w| w.get(key).cloned());
        let stored = match pending {
            Some(body) => Some(body),
            None => durably!(
                self,
                "seq_window",
                self.store
                    .seq_window(key.0.as_str(), key.1.as_str(), &key.2)
            )
            .unwrap_or_default(),
        };
        let window = stored
            .and_then(|b| serde_json::from_str::<SeqWindow>(&b).ok())
            .unwrap_or_else(|| SeqWindow::new(self.ingest.seq_window));
        let mut of_agent: Vec<(Timestamp, String)> = self
            .seqs
            .iter()
            .filter(|((s, a, _), _)| *s == key.0 && *a == key.1)
            .map(|((_, _, e), v)| (v.seen, e.clone()))
            .collect();
        if of_agent.len() >= self.ingest.max_epochs_per_agent {
            of_agent.sort();
            let excess = of_agent.len() + 1 - self.ingest.max_epochs_per_agent;
            for (_, epoch) in of_agent.into_iter().take(excess) {
                self.metrics
                    .bounds_hit
                    .with_label_values(&["epochs_per_agent"])
                    .inc();
                self.seqs.remove(&(key.0.clone(), key.1.clone(), epoch));
            }
        }
        self.seqs
            .insert(key.clone(), EpochWindow { window, seen: now });
    }

    /// Epochs silent for `epoch_idle_days` leave memory (their windows stay in the store).
    pub(super) fn evict_idle_epochs(&mut self, now: Timestamp) {
        let idle = chrono::Duration::days(i64::from(self.ingest.epoch_idle_days));
        let before = self.seqs.len();
        self.seqs.retain(|_, e| now - e.seen < idle);
        let evicted = before - self.seqs.len();
        if evicted > 0 {
            self.metrics
                .bounds_hit
                .with_label_values(&["epoch_idle"])
                .inc_by(evicted as u64);
        }
    }

    /// Save seq windows `(site, agent, epoch, body)`: in one transaction, and where the store
    /// refuses that for good, one by one, so that only the row it refuses is dead-lettered.
    pub(super) async fn save_windows(
        &mut self,
        rows: Vec<(String, String, String, String)>,
        now: Timestamp,
    ) {
        let ms = now.timestamp_millis();
        if durably!(self, "seq_window", self.store.save_seq_windows(&rows, ms)).is_ok() {
            return;
        }
        for row in rows {
            let one = [row];
            if let Err(e) = durably!(self, "seq_window", self.store.save_seq_windows(&one, ms)) {
                let [(site, agent, epoch, body)] = one;
                let reason = format!(
                    "the store refused the seq window of agent {agent} epoch {epoch:?}: {e}; \
                     duplicates of this epoch are caught in memory until a restart"
                );
                let topic = format!("{}/sites/{site}/{agent}/readings", self.scheme.prefix());
                self.dead_letter(&topic, "store_refused", &reason, body.as_bytes())
                    .await;
            }
        }
    }

    /// Start a group of messages whose seq windows are saved together by
    /// [`Core::commit_group`]; none of the group's messages may be acknowledged before it.
    pub fn begin_group(&mut self) {
        self.deferred_windows.get_or_insert_with(Default::default);
    }

    /// Save what the group changed of the engine's accumulated state, then the seq windows
    /// of the group in one transaction (retried while the store is away, like every store
    /// write), and end the group.
    pub async fn commit_group(&mut self) {
        let Some(windows) = self.deferred_windows.take() else {
            return;
        };
        self.save_accumulated().await;
        if windows.is_empty() {
            return;
        }
        let rows: Vec<(String, String, String, String)> = windows
            .into_iter()
            .map(|((site, agent, epoch), body)| (site.to_string(), agent.to_string(), epoch, body))
            .collect();
        self.metrics.group_commit_batches.observe(rows.len() as f64);
        let now = self.now();
        self.save_windows(rows, now).await;
    }
}
