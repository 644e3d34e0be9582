//! Alarm-load figures (IEC 62682) in the metrics: raises of the last hour, chattering causes,
//! shelved standing incidents.

use super::Core;
use std::collections::HashMap;
use telemetry::Timestamp;

impl Core {
    /// Alarm-load figures (IEC 62682) in the metrics: raises of the last hour, chattering
    /// causes (raised 3 times or more within it), shelved standing incidents.
    pub(super) fn update_load_gauges(&mut self) {
        let hour_ago = self.now() - chrono::Duration::hours(1);
        while self
            .recent_raises
            .front()
            .is_some_and(|(t, _)| *t < hour_ago)
        {
            self.recent_raises.pop_front();
        }
        let mut per_cause: HashMap<&str, Vec<Timestamp>> = HashMap::new();
        for (t, k) in &self.recent_raises {
            per_cause.entry(k.as_str()).or_default().push(*t);
        }
        self.metrics
            .incidents_raised_last_hour
            .set(self.recent_raises.len() as i64);
        self.metrics.chattering_causes.set(
            per_cause
                .values()
                .filter(|t| telemetry::chatters(t))
                .count() as i64,
        );
        let now = self.now();
        self.metrics.incidents_shelved.set(
            self.open
                .values()
                .filter(|r| r.incident.shelved_until.is_some_and(|u| u > now))
                .count() as i64,
        );
    }
}
