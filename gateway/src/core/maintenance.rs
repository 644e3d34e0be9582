//! Points taken out of service for maintenance, and back.

use super::handle::ServiceChange;
use super::live::OutOfService;
use super::{ActionError, Core, CoreError};

impl Core {
    /// Take a point out of service until a time (or back into service: `until` None).
    pub async fn set_out_of_service(
        &mut self,
        change: ServiceChange,
    ) -> Result<Option<OutOfService>, CoreError> {
        let now = self.now();
        let entry = match change.until {
            Some(until) => {
                if until <= now {
                    return Err(
                        ActionError::Invalid("`until` must lie in the future".into()).into(),
                    );
                }
                if change.reason.trim().is_empty() || change.by.trim().is_empty() {
                    return Err(
                        ActionError::Invalid("operator and reason are required".into()).into(),
                    );
                }
                Some(OutOfService {
                    site: change.site.clone(),
                    point: change.point.clone(),
                    by: change.by,
                    reason: change.reason,
                    since: now,
                    until,
                })
            }
            None => None,
        };
        let (site, point) = (change.site, change.point);
        let body = entry
            .as_ref()
            .map(|e| serde_json::to_string(e).unwrap_or_default());
        durably!(
            self,
            "out_of_service",
            self.store
                .set_out_of_service(site.as_str(), point.as_str(), body.as_deref())
        )?;
        let mut live = self.live.write().expect("live lock");
        match &entry {
            Some(e) => {
                tracing::info!(%site, %point, until = %telemetry::format_time(&e.until), reason = %e.reason, by = %e.by, "point out of service");
                live.out_of_service.insert((site, point), e.clone());
            }
            None => {
                tracing::info!(%site, %point, "point back in service");
                live.out_of_service.remove(&(site, point));
            }
        }
        Ok(entry)
    }
}
