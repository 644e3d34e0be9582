//! Timers on the gateway clock: the engine's (missing data, durations), warnings that start
//! or expire, shelvings and out-of-service periods that end, epochs that leave memory.

use super::handle::ServiceChange;
use super::lifecycle;
use super::{Core, CoreError};
use telemetry::{IncidentEvent, SiteId, Timestamp};

impl Core {
    /// Timers on the gateway clock: the engine's (missing data, durations) and shelving expiry.
    pub async fn tick(&mut self) -> Result<Vec<IncidentEvent>, CoreError> {
        self.scratch.clear();
        let now = self.now();
        self.engine.tick(now, &mut self.scratch);
        self.save_accumulated().await;
        self.evict_idle_epochs(now);
        let change = self.book.advance(now);
        let touched = self.on_warning_change(&change, now);
        let mut events = self.apply_transitions().await?;
        events.extend(self.restate_warnings(&touched, now).await?);
        self.update_load_gauges();
        self.update_ops_gauges();
        self.record_intervals(now).await;
        let ended: Vec<(SiteId, telemetry::PointId)> = self
            .live
            .read()
            .expect("live lock")
            .out_of_service
            .values()
            .filter(|o| o.until <= now)
            .map(|o| (o.site.clone(), o.point.clone()))
            .collect();
        for (site, point) in ended {
            self.set_out_of_service(ServiceChange::back_in_service(site, point))
                .await?;
        }
        // In cause order: nothing the gateway sends depends on the order of a hash map.
        let mut expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, r)| r.incident.shelved_until.is_some_and(|u| u <= now))
            .map(|(k, _)| k.clone())
            .collect();
        expired.sort();
        for key in expired {
            if let Some(mut rec) = self.open.remove(&key) {
                if let Some(ev) = lifecycle::unshelve(&mut rec, None, now) {
                    events.push(self.persist(&key, &mut rec, ev).await?);
                }
                self.open.insert(key, rec);
            }
        }
        if self.supervision.enabled && self.next_supervision.is_none_or(|t| now >= t) {
            self.next_supervision =
                Some(now + chrono::Duration::milliseconds(self.supervision.check_ms as i64));
            events.extend(self.supervise(now).await?);
        }
        Ok(events)
    }

    /// Incidents past their time to acknowledge or to close become overdue (督办): the standing
    /// ones in memory, and those cleared but not closed, from the store.
    async fn supervise(&mut self, now: Timestamp) -> Result<Vec<IncidentEvent>, CoreError> {
        let mut events = Vec::new();
        let mut keys: Vec<String> = self.open.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some(mut rec) = self.open.remove(&key) else {
                continue;
            };
            if let Some(what) = self.overdue_now(&rec.incident, now) {
                let ev = lifecycle::overdue(&mut rec, what, now, self.language);
                events.push(self.persist(&key, &mut rec, ev).await?);
            }
            self.open.insert(key, rec);
        }
        let cleared = self
            .store
            .incidents(&crate::store::IncidentFilter {
                state: Some("cleared".into()),
                ascending: true,
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        for i in cleared {
            let Some(what) = self.overdue_now(&i, now) else {
                continue;
            };
            let (Some(mut rec), Some(key)) = (
                self.store.incident(&i.id).await?,
                self.store.cause_of(&i.id).await?,
            ) else {
                continue;
            };
            let ev = lifecycle::overdue(&mut rec, what, now, self.language);
            events.push(self.persist(&key, &mut rec, ev).await?);
        }
        Ok(events)
    }

    fn overdue_now(
        &self,
        i: &telemetry::Incident,
        now: Timestamp,
    ) -> Option<telemetry::OverdueFor> {
        let category = self
            .live
            .read()
            .expect("live lock")
            .sites
            .get(&i.site)
            .and_then(|s| s.info.category.as_ref().map(|c| c.as_str().to_string()));
        let times = self
            .supervision
            .times_for(&i.rule, i.severity, category.as_deref());
        super::supervision::due(i, times, now)
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        let shelving = self
            .open
            .values()
            .filter_map(|r| r.incident.shelved_until)
            .min();
        [
            self.engine.next_deadline(),
            shelving,
            self.book.next_deadline(),
            self.next_supervision.filter(|_| self.supervision.enabled),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
