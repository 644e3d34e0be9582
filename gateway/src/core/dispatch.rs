//! One MQTT message in: its topic dispatched (births, statuses, reading batches, weather),
//! the bounds on sites, agents and catalogue points applied.

use super::refusals::RefusedItem;
use super::{Core, CoreError};
use std::time::Instant;
use telemetry::{
    decode_catalogue, decode_status, AgentId, AgentState, IncidentEvent, SiteId, Topic,
};

impl Core {
    pub(super) fn bind_catalogue(&mut self, site: &SiteId, cat: &telemetry::Catalogue) {
        self.live
            .write()
            .expect("live lock")
            .apply_catalogue(site, cat);
        let ctx = self.site_context(site);
        self.engine.set_site(site, ctx);
        let now = self.now();
        self.engine.set_catalogue(site, cat, now, &mut self.scratch);
        self.rejudge_site_warnings(site, now);
    }

    /// Handle one MQTT message. Returns the incident events it caused. The caller acknowledges
    /// the message to the broker after this returns `Ok`.
    pub async fn handle_message(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> Result<Vec<IncidentEvent>, CoreError> {
        let started = Instant::now();
        self.scratch.clear();
        let now = self.now();
        let parsed = self.scheme.parse(topic);
        let kind = match &parsed {
            Ok(Topic::Birth { .. }) => "birth",
            Ok(Topic::Readings { .. }) => "readings",
            Ok(Topic::Status { .. }) => "status",
            Ok(Topic::WeatherCap) => "weather_cap",
            Ok(Topic::WeatherCenc) => "weather_cenc",
            Ok(Topic::Incidents { .. }) | Err(_) => "other",
        };
        self.metrics
            .messages_received
            .with_label_values(&[kind])
            .inc();
        match parsed {
            Err(e) => {
                self.refuse_message(topic, "bad_topic", &e.to_string(), payload)
                    .await;
            }
            Ok(
                Topic::Birth {
                    ref site,
                    ref agent,
                }
                | Topic::Status {
                    ref site,
                    ref agent,
                }
                | Topic::Readings {
                    ref site,
                    ref agent,
                },
            ) if self.admit(site, agent).is_some() => {
                let (code, reason) = self.admit(site, agent).unwrap_or_default();
                let bound = match code {
                    "too_many_sites" => Some("sites"),
                    "too_many_agents" => Some("agents_per_site"),
                    _ => None,
                };
                if let Some(bound) = bound {
                    self.metrics.bounds_hit.with_label_values(&[bound]).inc();
                }
                self.refuse_message(topic, code, &reason, payload).await;
            }
            Ok(Topic::Birth { site, agent }) => {
                match decode_catalogue(payload, Some(&agent), &self.limits) {
                    Err(e) => self.refuse_undecodable(topic, &e, payload).await,
                    Ok(decoded) => {
                        let mut refused: Vec<RefusedItem> = decoded
                            .refused
                            .iter()
                            .map(|(i, reason)| RefusedItem {
                                index: *i,
                                point: None,
                                code: "bad_point_spec",
                                reason: reason.clone(),
                                raw: String::new(),
                            })
                            .collect();
                        let mut catalogue = decoded.catalogue;
                        self.bound_catalogue(&site, &mut catalogue, &mut refused);
                        self.refuse_items(topic, &refused).await;
                        // Once per birth, not per point (a vehicle birth holds thousands).
                        let mut unknown: Vec<String> = catalogue
                            .points
                            .iter()
                            .filter(|p| !p.unit.is_known() || !p.quantity.is_known())
                            .map(|p| format!("{}/{}", p.quantity, p.unit))
                            .collect();
                        unknown.sort();
                        unknown.dedup();
                        if !unknown.is_empty() {
                            tracing::info!(%site, %agent, kinds = %unknown.join(", "), "units or quantities not known; kept as given");
                        }
                        let body = serde_json::to_string(&catalogue).unwrap_or_default();
                        match durably!(
                            self,
                            "catalogue",
                            self.store.save_catalogue(
                                site.as_str(),
                                agent.as_str(),
                                &body,
                                now.timestamp_millis(),
                            )
                        ) {
                            Ok(()) => self.bind_catalogue(&site, &catalogue),
                            Err(e) => {
                                self.refuse_message(
                                    topic,
                                    "store_refused",
                                    &format!("the store refused the catalogue: {e}"),
                                    payload,
                                )
                                .await
                            }
                        }
                    }
                }
            }
            Ok(Topic::Status { site, agent }) => {
                match decode_status(payload, Some(&agent), &self.limits) {
                    Err(e) => self.refuse_undecodable(topic, &e, payload).await,
                    Ok(status) => {
                        {
                            let mut live = self.live.write().expect("live lock");
                            let a = live
                                .site_mut(&site)
                                .agents
                                .entry(agent.clone())
                                .or_default();
                            a.online = status.state == AgentState::Online;
                            a.last_seen = Some(now);
                            let online = live
                                .sites
                                .values()
                                .flat_map(|s| s.agents.values())
                                .filter(|a| a.online)
                                .count();
                            self.metrics.agents_online.set(online as i64);
                        }
                        self.engine.on_agent_status(
                            &site,
                            &agent,
                            status.state,
                            status.ts,
                            &mut self.scratch,
                        );
                    }
                }
            }
            Ok(Topic::Readings { site, agent }) => {
                self.handle_batch(topic, &site, &agent, payload, now)
                    .await?
            }
            Ok(Topic::WeatherCap) | Ok(Topic::WeatherCenc) => {
                let kind = if matches!(parsed, Ok(Topic::WeatherCap)) {
                    "cap"
                } else {
                    "cenc"
                };
                match self.handle_weather(kind, payload).await {
                    Ok((_, events)) => {
                        self.metrics
                            .processing_seconds
                            .observe(started.elapsed().as_secs_f64());
                        return Ok(events);
                    }
                    Err(CoreError::Refused(reason)) => {
                        self.refuse_message(topic, "bad_weather_document", &reason, payload)
                            .await
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Topic::Incidents { .. }) => {}
        }
        let events = self.apply_transitions().await?;
        self.metrics
            .processing_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(events)
    }

    /// Bounds of a birth: points beyond `max_points_per_site` for the site are refused.
    pub(super) fn bound_catalogue(
        &mut self,
        site: &SiteId,
        catalogue: &mut telemetry::Catalogue,
        refused: &mut Vec<RefusedItem>,
    ) {
        let max = self.ingest.max_points_per_site;
        let live = self.live.read().expect("live lock");
        let known = live.sites.get(site);
        let mut count = known.map_or(0, |s| s.points.len());
        let mut kept = Vec::with_capacity(catalogue.points.len());
        for (index, p) in std::mem::take(&mut catalogue.points)
            .into_iter()
            .enumerate()
        {
            let is_new = !known.is_some_and(|s| s.points.contains_key(&p.point));
            if is_new && count >= max {
                refused.push(RefusedItem::too_many_points(
                    &self.metrics,
                    index,
                    &p.point,
                    site,
                    max,
                ));
                continue;
            }
            if is_new {
                count += 1;
            }
            kept.push(p);
        }
        catalogue.points = kept;
    }

    /// Who may speak (only registered sites, when so configured) and the bounds of sites and
    /// agents: `None` when the message may go on, else the refusal.
    pub(super) fn admit(&self, site: &SiteId, agent: &AgentId) -> Option<(&'static str, String)> {
        if self.ingest.registered_sites_only && !self.registry.contains_key(site) {
            return Some((
                "unregistered_site",
                format!("site {site} is not in [[sites]] (ingest.registered_sites_only)"),
            ));
        }
        let live = self.live.read().expect("live lock");
        match live.sites.get(site) {
            None if live.sites.len() >= self.ingest.max_sites => Some((
                "too_many_sites",
                format!(
                    "the gateway keeps {} sites already (ingest.max_sites)",
                    self.ingest.max_sites
                ),
            )),
            Some(s)
                if !s.agents.contains_key(agent)
                    && s.agents.len() >= self.ingest.max_agents_per_site =>
            {
                Some((
                    "too_many_agents",
                    format!(
                        "site {site} has {} agents already (ingest.max_agents_per_site)",
                        self.ingest.max_agents_per_site
                    ),
                ))
            }
            _ => None,
        }
    }
}
