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
        self.evict_idle_epochs(now);
        let change = self.book.advance(now);
        let touched = self.on_warning_change(&change, now);
        let mut events = self.apply_transitions().await?;
        events.extend(self.restate_warnings(&touched, now).await?);
        self.update_load_gauges();
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
        Ok(events)
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
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
