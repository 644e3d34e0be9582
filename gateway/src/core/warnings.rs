//! Weather and earthquake warnings in the core: documents applied to the warning book, the
//! sites they touch re-judged at once, standing incidents' `warnings` kept current.

use super::lifecycle;
use super::{Core, CoreError};
use telemetry::{IncidentEvent, SiteId, Timestamp};

impl Core {
    /// Parse a weather document and apply it to the book (no I/O).
    pub(super) fn apply_weather(
        &mut self,
        kind: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<weather::Applied, CoreError> {
        let applied = match kind {
            "cap" => {
                let alert = weather::parse_cap(body, &self.book.config().cap)
                    .map_err(|e| CoreError::Refused(e.to_string()))?;
                self.book.apply(&alert, now)
            }
            _ => {
                let report = weather::parse_cenc(body, self.book.config())
                    .map_err(|e| CoreError::Refused(e.to_string()))?;
                self.book.apply_cenc(&report, now)
            }
        };
        if let Err(weather::BookError::SenderFull { .. }) = &applied {
            self.metrics
                .bounds_hit
                .with_label_values(&["warnings_per_sender"])
                .inc();
        }
        applied.map_err(|e| CoreError::Refused(e.to_string()))
    }

    /// A CAP or CENC document (from MQTT or HTTP). Affected sites are re-judged at once.
    pub async fn handle_weather(
        &mut self,
        kind: &str,
        body: &[u8],
    ) -> Result<(weather::Outcome, Vec<IncidentEvent>), CoreError> {
        self.scratch.clear();
        let now = self.now();
        let applied = self.apply_weather(kind, body, now)?;
        let keep_ms = i64::from(self.book.config().book.remember_for_h) * 3_600_000;
        if let Err(e) = durably!(
            self,
            "weather_doc",
            self.store.add_weather_doc(kind, now, body, keep_ms)
        ) {
            // In force now, but it would not come back after a restart: say so where operators look.
            let reason = format!(
                "the store refused the {kind} document (it is in force until a restart): {e}"
            );
            self.dead_letter(&format!("weather/{kind}"), "store_refused", &reason, body)
                .await;
        }
        tracing::info!(
            kind,
            outcome = applied.outcome.as_str(),
            started = applied.change.started.len(),
            ended = applied.change.ended.len(),
            "weather document taken"
        );
        let touched = self.on_warning_change(&applied.change, now);
        let mut events = self.apply_transitions().await?;
        events.extend(self.restate_warnings(&touched, now).await?);
        Ok((applied.outcome, events))
    }

    /// Re-judge the sites a change of warnings touches; returns them.
    pub(super) fn on_warning_change(
        &mut self,
        change: &weather::Change,
        now: Timestamp,
    ) -> Vec<SiteId> {
        if change.is_empty() {
            return Vec::new();
        }
        let touched: Vec<SiteId> = {
            let live = self.live.read().expect("live lock");
            live.sites
                .iter()
                .filter(|(_, s)| {
                    let loc = s.location();
                    change
                        .started
                        .iter()
                        .chain(&change.ended)
                        .any(|w| w.affects(&loc))
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for site in &touched {
            self.rejudge_site_warnings(site, now);
        }
        self.publish_warnings();
        touched
    }

    /// After the transitions of a change of warnings: standing incidents of the touched sites
    /// whose shaping warnings changed without a change of severity get their `warnings` brought
    /// up to date (see [`incident::restate_warnings`]).
    pub(super) async fn restate_warnings(
        &mut self,
        sites: &[SiteId],
        now: Timestamp,
    ) -> Result<Vec<IncidentEvent>, CoreError> {
        let mut keys: Vec<String> = self
            .open
            .iter()
            .filter(|(_, r)| sites.contains(&r.incident.site))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let Some(mut rec) = self.open.remove(&key) else {
                continue;
            };
            let shaping = self
                .engine
                .shaping_warnings(&rec.incident.rule, &rec.incident.site);
            let event = shaping.and_then(|w| lifecycle::restate_warnings(&mut rec, w, now));
            if let Some(ev) = event {
                out.push(self.persist(&key, &mut rec, ev).await?);
            }
            self.open.insert(key, rec);
        }
        Ok(out)
    }

    pub(super) fn rejudge_site_warnings(&mut self, site: &SiteId, now: Timestamp) {
        let loc = match self.live.read().expect("live lock").sites.get(site) {
            Some(s) => s.location(),
            None => return,
        };
        let active: Vec<alarm_rules::ActiveWarning> = self
            .book
            .warnings_for(&loc)
            .into_iter()
            .map(|w| w.to_active_warning())
            .collect();
        self.engine
            .set_warnings(site, active, now, &mut self.scratch);
    }

    /// Refresh the list `GET /api/v1/weather/warnings` serves.
    pub(super) fn publish_warnings(&self) {
        let mut live = self.live.write().expect("live lock");
        let list: Vec<serde_json::Value> = self
            .book
            .active()
            .into_iter()
            .map(|w| {
                let mut v = serde_json::to_value(w).unwrap_or_default();
                let sites: Vec<&str> = live
                    .sites
                    .iter()
                    .filter(|(_, s)| w.affects(&s.location()))
                    .map(|(id, _)| id.as_str())
                    .collect();
                v["sites"] = serde_json::json!(sites);
                // Names beside the codes, for people (GB/T 2260 table in telemetry).
                let names: Vec<Option<String>> = w
                    .regions
                    .iter()
                    .map(|r| telemetry::regions::full_name(r.as_str()))
                    .collect();
                v["region_names"] = serde_json::json!(names);
                v
            })
            .collect();
        live.warnings = list;
    }
}
