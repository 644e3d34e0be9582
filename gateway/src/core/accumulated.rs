//! The engine's accumulated state (driving time, geofence dwell) kept in the store: saved
//! with each group of messages before they are acknowledged (and after the timers), given
//! back to the engine when the gateway starts.

use super::{Core, CoreError};
use alarm_rules::{Accumulated, AccumulatedState};
use telemetry::{PointId, SiteId};

impl Core {
    /// Save what changed since the last save. A state the store refuses for good is logged
    /// and counted (`hrs_store_refusals_total{what="accumulated"}`): the engine goes on with
    /// it, and a restart would start that accumulation again.
    pub(super) async fn save_accumulated(&mut self) {
        let changed = self.engine.take_accumulated();
        if changed.is_empty() {
            return;
        }
        let rows: Vec<(String, String, String, String)> = changed
            .into_iter()
            .filter_map(|a| {
                let state = serde_json::to_string(&a.state).ok()?;
                Some((a.rule, a.site.to_string(), a.point.to_string(), state))
            })
            .collect();
        let ms = self.now().timestamp_millis();
        let _ = durably!(self, "accumulated", self.store.save_accumulated(&rows, ms));
    }

    /// Give the saved states back to the engine (before the catalogues bind the rules).
    pub(super) async fn restore_accumulated(&mut self) -> Result<(), CoreError> {
        let mut n = 0usize;
        for (rule, site, point, state) in self.store.accumulated().await? {
            let (Ok(site), Ok(point), Ok(state)) = (
                SiteId::new(site),
                PointId::new(point),
                serde_json::from_str::<AccumulatedState>(&state),
            ) else {
                tracing::warn!(rule = %rule, "a saved accumulated state is not readable; it starts again");
                continue;
            };
            self.engine.restore_accumulated(Accumulated {
                rule,
                site,
                point,
                state,
            });
            n += 1;
        }
        if n > 0 {
            tracing::info!(states = n, "accumulated rule state restored");
        }
        Ok(())
    }
}
