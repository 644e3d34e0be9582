//! The incident event log as its exits read it. Every exit pages through it with one
//! [`LogReader`] (all events, or one site's), in log order:
//! - the MQTT incidents sink and the forwarding lanes keep how far they have got in durable
//!   cursors here (a named cursor; a position per target and site), so a restart resumes
//!   where they stood;
//! - an SSE stream and a subscriber's stream keep their position at the client
//!   (`Last-Event-ID`, resolved with [`EventLog::position_of`]).
//!
//! A row that cannot be read (a corrupt body) is logged and passed over: the reader's
//! position moves past it, so one bad row never stalls an exit.

use super::{run, timed, Result, Store};
use sqlx::AnyPool;
use std::collections::HashMap;
use telemetry::IncidentEvent;

/// The event log and the exits' durable cursors.
#[derive(Clone)]
pub struct EventLog {
    pool: AnyPool,
}

/// Which events a reader reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Site(String),
}

/// A position in the log with the page size to read after it.
pub struct LogReader {
    log: EventLog,
    scope: Scope,
    pos: i64,
    page: i64,
}

impl LogReader {
    /// Where the reader stands: every event up to here has been handed out (or passed over).
    pub fn position(&self) -> i64 {
        self.pos
    }

    /// The next page after the position, in order; the position moves to its end. `None`
    /// when nothing lies after the position (caught up); a page may be empty when all its rows
    /// were unreadable.
    pub async fn next_page(&mut self) -> Result<Option<Vec<(i64, IncidentEvent)>>> {
        let rows = self
            .log
            .rows_after(&self.scope, self.pos, self.page)
            .await?;
        let Some(last) = rows.last().map(|(pos, _)| *pos) else {
            return Ok(None);
        };
        self.pos = last;
        Ok(Some(
            rows.into_iter()
                .filter_map(|(pos, body)| match serde_json::from_str(&body) {
                    Ok(ev) => Some((pos, ev)),
                    Err(e) => {
                        tracing::error!(pos, error = %e, "an event in the log is not readable; passed over");
                        None
                    }
                })
                .collect(),
        ))
    }
}

impl EventLog {
    pub fn new(store: &Store) -> EventLog {
        EventLog {
            pool: store.pool().clone(),
        }
    }

    /// A reader of `scope` after position `after`, `page` rows at a time.
    pub fn reader(&self, scope: Scope, after: i64, page: i64) -> LogReader {
        LogReader {
            log: self.clone(),
            scope,
            pos: after,
            page,
        }
    }

    async fn rows_after(
        &self,
        scope: &Scope,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>> {
        let q = match scope {
            Scope::All => sqlx::query_as(
                "SELECT pos, body FROM incident_events WHERE pos > $1 ORDER BY pos LIMIT $2",
            )
            .bind(after)
            .bind(limit),
            Scope::Site(site) => sqlx::query_as(
                "SELECT pos, body FROM incident_events WHERE site = $1 AND pos > $2 \
                 ORDER BY pos LIMIT $3",
            )
            .bind(site.as_str())
            .bind(after)
            .bind(limit),
        };
        run(q.fetch_all(&self.pool)).await
    }

    /// The newest position of the log (0 when empty).
    pub async fn end(&self) -> Result<i64> {
        run(
            sqlx::query_scalar("SELECT COALESCE(MAX(pos), 0) FROM incident_events")
                .fetch_one(&self.pool),
        )
        .await
    }

    /// The position of an event (a client's `Last-Event-ID`).
    pub async fn position_of(&self, event_id: &str) -> Result<Option<i64>> {
        run(
            sqlx::query_scalar("SELECT pos FROM incident_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool),
        )
        .await
    }

    /// Sites with events in `(after, upto]`.
    pub async fn sites_between(&self, after: i64, upto: i64) -> Result<Vec<String>> {
        run(sqlx::query_scalar(
            "SELECT DISTINCT site FROM incident_events WHERE pos > $1 AND pos <= $2",
        )
        .bind(after)
        .bind(upto)
        .fetch_all(&self.pool))
        .await
    }

    /// (pos, site) of the events after `after`, in order.
    pub async fn sites_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        run(sqlx::query_as(
            "SELECT pos, site FROM incident_events WHERE pos > $1 ORDER BY pos LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool))
        .await
    }

    /// The newest readable events of one site at or before `upto`, newest first.
    pub async fn site_events_before(
        &self,
        site: &str,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<IncidentEvent>> {
        let bodies: Vec<String> = run(sqlx::query_scalar(
            "SELECT body FROM incident_events WHERE site = $1 AND pos <= $2 \
             ORDER BY pos DESC LIMIT $3",
        )
        .bind(site)
        .bind(upto)
        .bind(limit)
        .fetch_all(&self.pool))
        .await?;
        Ok(bodies
            .iter()
            .filter_map(|body| match serde_json::from_str(body) {
                Ok(ev) => Some(ev),
                Err(e) => {
                    tracing::error!(site, error = %e, "an event in the log is not readable; passed over");
                    None
                }
            })
            .collect())
    }

    /// A named durable cursor (0 when never saved).
    pub async fn cursor(&self, name: &str) -> Result<i64> {
        let pos = run(
            sqlx::query_scalar("SELECT pos FROM cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool),
        )
        .await?;
        Ok(pos.unwrap_or(0))
    }

    pub async fn set_cursor(&self, name: &str, pos: i64) -> Result<()> {
        run(sqlx::query(
            "INSERT INTO cursors (name, pos) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET pos = excluded.pos",
        )
        .bind(name)
        .bind(pos)
        .execute(&self.pool))
        .await?;
        Ok(())
    }

    /// Where a delivery target starts in the log: recorded when it is first seen
    /// (`default`), kept after.
    pub async fn target_start(&self, target: &str, default: i64) -> Result<i64> {
        timed(async {
            sqlx::query(
                "INSERT INTO delivery_targets (target, start_pos) VALUES ($1, $2) \
                 ON CONFLICT (target) DO NOTHING",
            )
            .bind(target)
            .bind(default)
            .execute(&self.pool)
            .await?;
            let start =
                sqlx::query_scalar("SELECT start_pos FROM delivery_targets WHERE target = $1")
                    .bind(target)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(start)
        })
        .await
    }

    /// A target's start and cursors gone (the target was deleted).
    pub async fn forget_target(&self, target: &str) -> Result<()> {
        timed(async {
            for sql in [
                "DELETE FROM delivery_progress WHERE target = $1",
                "DELETE FROM delivery_targets WHERE target = $1",
            ] {
                sqlx::query(sql).bind(target).execute(&self.pool).await?;
            }
            Ok(())
        })
        .await
    }

    /// A target's cursors per site: the position up to which the site's events are done.
    pub async fn progress(&self, target: &str) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = run(sqlx::query_as(
            "SELECT site, pos FROM delivery_progress WHERE target = $1",
        )
        .bind(target)
        .fetch_all(&self.pool))
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn set_progress(&self, target: &str, site: &str, pos: i64) -> Result<()> {
        run(sqlx::query(
            "INSERT INTO delivery_progress (target, site, pos) VALUES ($1, $2, $3) \
             ON CONFLICT (target, site) DO UPDATE SET pos = excluded.pos",
        )
        .bind(target)
        .bind(site)
        .bind(pos)
        .execute(&self.pool))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{EventLog, Scope};
    use crate::core::lifecycle::apply_transition;
    use crate::store::Store;
    use alarm_rules::{Cause, Message, Subject, Transition, TransitionKind};
    use telemetry::{parse_time, PointId, Quality, Severity, SiteId};

    /// Rows 2 and 4 cannot be read: a reader hands out 1 and 3, moves past both, and says it
    /// is caught up; the page size is smaller than the log, and the last page holds only an
    /// unreadable row.
    #[tokio::test]
    async fn a_reader_passes_over_unreadable_rows_without_stalling() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let raise = Transition {
            cause: Cause {
                rule: "coal.ch4".into(),
                site: SiteId::new("mine-01").unwrap(),
                subject: Subject::Point {
                    point: PointId::new("CH4-101").unwrap(),
                },
            },
            kind: TransitionKind::Raised,
            severity: Severity::Alarm,
            agent: None,
            point: None,
            value: None,
            threshold: None,
            at: parse_time("2026-07-28T02:00:00Z").unwrap(),
            rule_version: "v1".into(),
            message: Message::Nothing,
            warnings: vec![],
            quality: Quality::Good,
            late: false,
        };
        let (_, ev) = apply_transition(None, &raise, None, presentation::Language::En).unwrap();
        let event = |id: &str| {
            let mut ev = ev.clone();
            ev.event_id = id.to_string();
            serde_json::to_string(&ev).unwrap()
        };
        let bodies = [
            event("e1"),
            "{not json".to_string(),
            event("e3"),
            "[]".to_string(),
        ];
        for (i, body) in bodies.iter().enumerate() {
            sqlx::query(
                "INSERT INTO incident_events (event_id, incident_id, site, event_seq, body) \
                 VALUES ($1, $2, 'mine-01', 1, $3)",
            )
            .bind(format!("e{}", i + 1))
            .bind(format!("inc-{i}"))
            .bind(body.as_str())
            .execute(store.pool())
            .await
            .unwrap();
        }
        for scope in [Scope::All, Scope::Site("mine-01".into())] {
            let mut reader = EventLog::new(&store).reader(scope, 0, 3);
            let first = reader.next_page().await.unwrap().unwrap();
            let ids: Vec<&str> = first.iter().map(|(_, e)| e.event_id.as_str()).collect();
            assert_eq!(ids, ["e1", "e3"]);
            assert_eq!(reader.position(), first[1].0);
            let second = reader
                .next_page()
                .await
                .unwrap()
                .expect("a page of one bad row");
            assert!(second.is_empty());
            assert_eq!(reader.position(), 4);
            assert!(reader.next_page().await.unwrap().is_none(), "caught up");
        }
    }
}
