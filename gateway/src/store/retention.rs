//! Retention: what the store keeps, and for how long (`[retention]`). Closed incidents (with
//! their events), dead letters and the regulator's interval figures older than their settings
//! are deleted, in bounded chunks so the core's writes never wait long behind a purge, by a
//! task that runs at start and then every `check_interval_ms`, with the age measured on the
//! injected clock. The audit log's retention is `auth.audit_retention_days` (pruned by the
//! access watcher). Standing and cleared-but-open incidents are never purged, whatever their age.

use super::{timed, Result, Store};
use crate::clock::SharedClock;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use telemetry::Timestamp;
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

/// `[retention]`: days each kind of record is kept (0: kept for ever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Closed incidents and every event of theirs, counted from their closing.
    pub closed_incidents_days: u32,
    /// Refused messages and readings kept for inspection (besides `ingest.dead_letter_capacity`).
    pub dead_letters_days: u32,
    /// The per-site interval rows behind `/api/v1/figures` (online time, completeness).
    pub site_intervals_days: u32,
    /// How often the purge runs (it also runs once at start).
    pub check_interval_ms: u64,
    /// Rows deleted per statement: a purge is many short transactions, never one long one.
    pub batch_rows: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            closed_incidents_days: 1095,
            dead_letters_days: 90,
            site_intervals_days: 1095,
            check_interval_ms: 3_600_000,
            batch_rows: 500,
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1_000..=86_400_000).contains(&self.check_interval_ms) {
            anyhow::bail!("retention.check_interval_ms must be between 1000 and 86400000");
        }
        if !(1..=100_000).contains(&self.batch_rows) {
            anyhow::bail!("retention.batch_rows must be between 1 and 100000");
        }
        Ok(())
    }

    /// The cutoff of a setting: records older than this go (`None`: kept for ever).
    fn cutoff(days: u32, now: Timestamp) -> Option<i64> {
        (days > 0).then(|| now.timestamp_millis() - i64::from(days) * DAY_MS)
    }
}

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub incidents: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub site_intervals: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.incidents + self.events + self.dead_letters + self.site_intervals
    }
}

impl Store {
    /// Delete closed incidents closed before `before_ms`, with their events; at most `batch`
    /// incidents per transaction. Returns (incidents, events) deleted.
    pub async fn purge_closed_incidents(&self, before_ms: i64, batch: u32) -> Result<(u64, u64)> {
        let (mut incidents, mut events) = (0, 0);
        // Paging by (raised_ms, id): an incident raised before the cutoff but closed after it
        // stays, and the next page goes past it.
        let mut after: (i64, String) = (i64::MIN, String::new());
        loop {
            let rows: Vec<(String, i64, String)> = timed(async {
                Ok(sqlx::query_as(
                    "SELECT id, raised_ms, body FROM incidents WHERE state = 'closed' \
                     AND raised_ms < $1 AND (raised_ms > $2 OR (raised_ms = $2 AND id > $3)) \
                     ORDER BY raised_ms, id LIMIT $4",
                )
                .bind(before_ms)
                .bind(after.0)
                .bind(&after.1)
                .bind(i64::from(batch))
                .fetch_all(&self.pool)
                .await?)
            })
            .await?;
            let Some((last_id, last_ms, _)) = rows.last() else {
                return Ok((incidents, events));
            };
            after = (*last_ms, last_id.clone());
            let done: Vec<&str> = rows
                .iter()
                .filter(|(_, raised_ms, body)| {
                    let closed_ms = Self::record_from_body(body)
                        .ok()
                        .and_then(|r| r.incident.closed_at)
                        .map_or(*raised_ms, |t| t.timestamp_millis());
                    closed_ms < before_ms
                })
                .map(|(id, _, _)| id.as_str())
                .collect();
            if !done.is_empty() {
                let (i, e) = timed(async {
                    let mut tx = self.pool.begin().await?;
                    let (mut i, mut e) = (0, 0);
                    for id in &done {
                        e += sqlx::query("DELETE FROM incident_events WHERE incident_id = $1")
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        i +=
                            sqlx::query("DELETE FROM incidents WHERE id = $1 AND state = 'closed'")
                                .bind(*id)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                    }
                    tx.commit().await?;
                    Ok((i, e))
                })
                .await?;
                incidents += i;
                events += e;
            }
            if rows.len() < batch as usize {
                return Ok((incidents, events));
            }
            tokio::task::yield_now().await;
        }
    }

    /// Delete rows of `table` whose `column` is before `before_ms`, `batch` rows per statement
    /// (the table's key is `key`). Returns the rows deleted.
    async fn purge_older(
        &self,
        table: &str,
        key: &str,
        column: &str,
        before_ms: i64,
        batch: u32,
    ) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE {column} < $1 LIMIT $2)"
        );
        let mut total = 0;
        loop {
            let n = timed(async {
                Ok(sqlx::query(&sql)
                    .bind(before_ms)
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    pub async fn purge_dead_letters(&self, before_ms: i64, batch: u32) -> Result<u64> {
        self.purge_older("dead_letters", "pos", "at_ms", before_ms, batch)
            .await
    }

    /// Interval rows that ended before `before_ms`.
    pub async fn purge_site_intervals(&self, before_ms: i64, batch: u32) -> Result<u64> {
        // The key is (site, start_ms): rows go by start, a whole interval at a time.
        let mut total = 0;
        loop {
            let n = timed(async {
                Ok(sqlx::query(
                    "DELETE FROM site_intervals WHERE start_ms IN \
                     (SELECT DISTINCT start_ms FROM site_intervals \
                      WHERE start_ms + length_ms <= $1 ORDER BY start_ms LIMIT $2)",
                )
                .bind(before_ms)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// One purge of everything past its retention at `now`.
    pub async fn purge(&self, config: &RetentionConfig, now: Timestamp) -> Result<Purged> {
        let mut p = Purged::default();
        let cut = |days| RetentionConfig::cutoff(days, now);
        if let Some(before) = cut(config.closed_incidents_days) {
            (p.incidents, p.events) = self
                .purge_closed_incidents(before, config.batch_rows)
                .await?;
        }
        if let Some(before) = cut(config.dead_letters_days) {
            p.dead_letters = self.purge_dead_letters(before, config.batch_rows).await?;
        }
        if let Some(before) = cut(config.site_intervals_days) {
            p.site_intervals = self.purge_site_intervals(before, config.batch_rows).await?;
        }
        Ok(p)
    }
}

/// The retention task: a purge at start, then every `check_interval_ms`, until `shutdown`.
/// Counts what it deleted in `hrs_retention_purged_total{what}`; a failed purge is logged
/// and tried again at the next turn.
pub async fn run_retention(
    store: Store,
    config: RetentionConfig,
    clock: SharedClock,
    purged: prometheus::IntCounterVec,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(config.check_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = tick.tick() => {} }
        match store.purge(&config, clock.now()).await {
            Ok(p) => {
                for (what, n) in [
                    ("incidents", p.incidents),
                    ("events", p.events),
                    ("dead_letters", p.dead_letters),
                    ("site_intervals", p.site_intervals),
                ] {
                    purged.with_label_values(&[what]).inc_by(n);
                }
                if p.total() > 0 {
                    tracing::info!(
                        incidents = p.incidents,
                        events = p.events,
                        dead_letters = p.dead_letters,
                        site_intervals = p.site_intervals,
                        "records past their retention deleted"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention purge failed; trying again later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lifecycle::IncidentRecord;
    use crate::store::history::SiteInterval;
    use telemetry::{EventKind, Incident, IncidentEvent, IncidentState};

    fn t(s: &str) -> Timestamp {
        telemetry::parse_time(s).unwrap()
    }

    /// An incident raised at `raised`, closed at `closed` (or left standing), with its raise
    /// (and close) in the event log.
    async fn incident(store: &Store, id: &str, raised: &str, closed: Option<&str>) {
        let mut i: Incident = serde_json::from_value(serde_json::json!({
            "id": id, "rule": "coal.ch4.working_face", "rule_version": "v", "site": "mine-01",
            "agent": "edge", "point": "CH4-101", "severity": "critical", "state": "active",
            "value": 1.6, "threshold": 1.5, "raised_at": raised, "acked_at": null, "acked_by": null,
            "cleared_at": null, "closed_at": null, "closed_by": null, "note": null, "late": false,
            "previous": null, "message": "m", "warnings": []
        }))
        .unwrap();
        let mut rec = IncidentRecord {
            incident: i.clone(),
            last_event_seq: 1,
        };
        let ev = |rec: &IncidentRecord, kind, at| IncidentEvent {
            event: kind,
            event_id: format!("{id}-{}", rec.last_event_seq),
            event_seq: rec.last_event_seq,
            at,
            by: None,
            tier: None,
            incident: rec.incident.clone(),
        };
        let raised_ev = ev(&rec, EventKind::Raised, i.raised_at);
        store.write_change(id, &rec, &raised_ev).await.unwrap();
        if let Some(c) = closed {
            i.state = IncidentState::Closed;
            i.closed_at = Some(t(c));
            i.note = Some("断电撤人".into());
            rec = IncidentRecord {
                incident: i,
                last_event_seq: 2,
            };
            let closed_ev = ev(&rec, EventKind::Closed, t(c));
            store.write_change(id, &rec, &closed_ev).await.unwrap();
        }
    }

    async fn store(dir: &std::path::Path) -> Store {
        Store::open(&format!("sqlite://{}", dir.join("gw.db").display()))
            .await
            .unwrap()
    }

    /// Closed incidents go with their events once closed longer than the setting; one raised
    /// long ago but closed recently stays, a standing one stays whatever its age; dead letters
    /// and interval rows go by their own settings; 0 keeps for ever.
    #[tokio::test]
    async fn a_purge_deletes_only_what_is_past_its_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let now = t("2030-01-01T00:00:00Z");
        incident(
            &store,
            "old",
            "2026-01-01T00:00:00Z",
            Some("2026-01-02T00:00:00Z"),
        )
        .await;
        incident(
            &store,
            "late-closed",
            "2026-01-01T00:00:00Z",
            Some("2029-06-01T00:00:00Z"),
        )
        .await;
        incident(&store, "standing", "2025-01-01T00:00:00Z", None).await;
        incident(
            &store,
            "recent",
            "2029-12-01T00:00:00Z",
            Some("2029-12-02T00:00:00Z"),
        )
        .await;
        for (at, topic) in [
            ("2029-09-01T00:00:00Z", "old"),
            ("2029-12-30T00:00:00Z", "new"),
        ] {
            store
                .add_dead_letter(t(at), topic, "not_json", "r", b"x", 1000)
                .await
                .unwrap();
        }
        let iv = |start: &str| SiteInterval {
            site: "mine-01".into(),
            start_ms: t(start).timestamp_millis(),
            length_ms: 300_000,
            observed_ms: 300_000,
            online_ms: 300_000,
            batches: 1,
            expected: 1,
        };
        store
            .add_site_intervals(&[iv("2026-06-01T00:00:00Z"), iv("2029-06-01T00:00:00Z")])
            .await
            .unwrap();

        // Small batches: the purge goes through in several statements.
        let config = RetentionConfig {
            batch_rows: 1,
            ..Default::default()
        };
        let p = store.purge(&config, now).await.unwrap();
        assert_eq!(
            p,
            Purged {
                incidents: 1,
                events: 2,
                dead_letters: 1,
                site_intervals: 1
            }
        );
        for (id, kept) in [
            ("old", false),
            ("late-closed", true),
            ("standing", true),
            ("recent", true),
        ] {
            assert_eq!(store.incident(id).await.unwrap().is_some(), kept, "{id}");
            assert_eq!(
                store.history(id).await.unwrap().is_empty(),
                !kept,
                "{id}'s events"
            );
        }
        let dl = store.dead_letters(10).await.unwrap();
        assert_eq!(
            dl.iter().map(|d| d.topic.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        assert_eq!(store.purge(&config, now).await.unwrap(), Purged::default());

        // 0: kept for ever.
        let forever = RetentionConfig {
            closed_incidents_days: 0,
            dead_letters_days: 0,
            site_intervals_days: 0,
            ..Default::default()
        };
        let much_later = t("2040-01-01T00:00:00Z");
        assert_eq!(
            store.purge(&forever, much_later).await.unwrap(),
            Purged::default()
        );
    }

    /// The task purges at start on the injected clock (a clock years ahead), counts what it
    /// deleted, and stops on shutdown.
    #[tokio::test]
    async fn the_task_purges_at_start_on_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        incident(
            &store,
            "old",
            "2026-01-01T00:00:00Z",
            Some("2026-01-02T00:00:00Z"),
        )
        .await;
        let clock: SharedClock =
            std::sync::Arc::new(crate::clock::ManualClock::new(t("2035-01-01T00:00:00Z")));
        let counter =
            prometheus::IntCounterVec::new(prometheus::Opts::new("purged", "purged"), &["what"])
                .unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_retention(
            store.clone(),
            RetentionConfig::default(),
            clock,
            counter.clone(),
            shutdown.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while counter.with_label_values(&["incidents"]).get() == 0 {
            assert!(std::time::Instant::now() < deadline, "no purge at start");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counter.with_label_values(&["events"]).get(), 2);
        assert!(store.incident("old").await.unwrap().is_none());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task stops on shutdown")
            .unwrap();
    }

    #[test]
    fn defaults_keep_three_years_and_bad_settings_are_refused() {
        let c = RetentionConfig::default();
        assert!(c.closed_incidents_days >= 1095 && c.site_intervals_days >= 1095);
        c.validate().unwrap();
        let bad = RetentionConfig {
            check_interval_ms: 10,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
