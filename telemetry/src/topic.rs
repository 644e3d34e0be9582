//! The MQTT topic scheme (default prefix `hrs/v1`).

use crate::ids::{AgentId, IdError, SiteId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    Birth { site: SiteId, agent: AgentId },
    Readings { site: SiteId, agent: AgentId },
    Status { site: SiteId, agent: AgentId },
    WeatherCap,
    WeatherCenc,
    Incidents { site: SiteId },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} is outside the prefix")]
    OutsidePrefix(String),
    #[error("topic {0:?} is not one of the contract's topics")]
    Unknown(String),
    #[error("topic {topic:?}: {source}")]
    BadId { topic: String, source: IdError },
}

/// The topic scheme under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicScheme {
    prefix: String,
}

impl Default for TopicScheme {
    fn default() -> Self {
        TopicScheme::new("hrs/v1")
    }
}

impl TopicScheme {
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        TopicScheme {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn birth(&self, site: &SiteId, agent: &AgentId) -> String {
        format!("{}/sites/{}/{}/birth", self.prefix, site, agent)
    }
    pub fn readings(&self, site: &SiteId, agent: &AgentId) -> String {
        format!("{}/sites/{}/{}/readings", self.prefix, site, agent)
    }
    pub fn status(&self, site: &SiteId, agent: &AgentId) -> String {
        format!("{}/sites/{}/{}/status", self.prefix, site, agent)
    }
    pub fn incidents(&self, site: &SiteId) -> String {
        format!("{}/incidents/{}", self.prefix, site)
    }
    pub fn weather_cap(&self) -> String {
        format!("{}/weather/cap", self.prefix)
    }
    pub fn weather_cenc(&self) -> String {
        format!("{}/weather/cenc", self.prefix)
    }
    /// The filters the gateway subscribes to.
    pub fn gateway_subscriptions(&self) -> Vec<String> {
        vec![
            format!("{}/sites/+/+/birth", self.prefix),
            format!("{}/sites/+/+/readings", self.prefix),
            format!("{}/sites/+/+/status", self.prefix),
            self.weather_cap(),
            self.weather_cenc(),
        ]
    }

    pub fn parse(&self, topic: &str) -> Result<Topic, TopicError> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| TopicError::OutsidePrefix(crate::time::truncate(topic)))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let bad = |source| TopicError::BadId {
            topic: crate::time::truncate(topic),
            source,
        };
        match parts.as_slice() {
            ["sites", site, agent, kind] => {
                let site = SiteId::new(*site).map_err(bad)?;
                let agent = AgentId::new(*agent).map_err(bad)?;
                match *kind {
                    "birth" => Ok(Topic::Birth { site, agent }),
                    "readings" => Ok(Topic::Readings { site, agent }),
                    "status" => Ok(Topic::Status { site, agent }),
                    _ => Err(TopicError::Unknown(crate::time::truncate(topic))),
                }
            }
            ["weather", "cap"] => Ok(Topic::WeatherCap),
            ["weather", "cenc"] => Ok(Topic::WeatherCenc),
            ["incidents", site] => Ok(Topic::Incidents {
                site: SiteId::new(*site).map_err(bad)?,
            }),
            _ => Err(TopicError::Unknown(crate::time::truncate(topic))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = TopicScheme::default();
        let site = SiteId::new("mine-01").unwrap();
        let agent = AgentId::new("mine-01-edge").unwrap();
        assert_eq!(
            s.readings(&site, &agent),
            "hrs/v1/sites/mine-01/mine-01-edge/readings"
        );
        assert_eq!(
            s.parse("hrs/v1/sites/mine-01/mine-01-edge/readings")
                .unwrap(),
            Topic::Readings {
                site: site.clone(),
                agent: agent.clone()
            }
        );
        assert_eq!(
            s.parse(&s.birth(&site, &agent)).unwrap(),
            Topic::Birth {
                site: site.clone(),
                agent: agent.clone()
            }
        );
        assert_eq!(s.parse("hrs/v1/weather/cap").unwrap(), Topic::WeatherCap);
        assert_eq!(
            s.parse("hrs/v1/incidents/mine-01").unwrap(),
            Topic::Incidents { site }
        );
        assert!(matches!(
            s.parse("other/v1/weather/cap"),
            Err(TopicError::OutsidePrefix(_))
        ));
        assert!(matches!(
            s.parse("hrs/v1/sites/Mine/a/readings"),
            Err(TopicError::BadId { .. })
        ));
        assert!(matches!(
            s.parse("hrs/v1/sites/m/a/other"),
            Err(TopicError::Unknown(_))
        ));
        let custom = TopicScheme::new("test/x/");
        assert_eq!(custom.weather_cap(), "test/x/weather/cap");
    }
}
