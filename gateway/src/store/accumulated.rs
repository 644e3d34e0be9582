//! The engine's accumulated state (driving time, geofence dwell), saved before the readings
//! that changed it are acknowledged and given back to the engine after a restart.

use super::{run, timed, Result, Store};

/// One saved state: `(rule, site, point, state as JSON)`.
pub type AccumulatedRow = (String, String, String, String);

const UPSERT: &str = "INSERT INTO accumulated (rule, site, point, state, saved_ms) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (rule, site, point) DO UPDATE SET state = excluded.state, saved_ms = excluded.saved_ms";

impl Store {
    /// Save states in one transaction (the latest of each rule and point wins).
    pub async fn save_accumulated(&self, rows: &[AccumulatedRow], saved_ms: i64) -> Result<()> {
        timed(async {
            let mut tx = self.pool.begin().await?;
            for (rule, site, point, state) in rows {
                sqlx::query(UPSERT)
                    .bind(rule)
                    .bind(site)
                    .bind(point)
                    .bind(state)
                    .bind(saved_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Every saved state.
    pub async fn accumulated(&self) -> Result<Vec<AccumulatedRow>> {
        run(
            sqlx::query_as("SELECT rule, site, point, state FROM accumulated ORDER BY saved_ms")
                .fetch_all(&self.pool),
        )
        .await
    }
}
