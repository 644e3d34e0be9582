//! How a message reaches a target: one of the sinks (`sinks/`): an HTTP `POST` (the
//! platform, webhooks), a DingTalk or WeCom robot, or an MQTT publish on another broker.
//! Each attempt ends in an [`Outcome`].

use super::message::Message;
use super::outcome::Outcome;
use super::sinks::mqtt::MqttSink;
use super::sinks::robots::Robot;
use super::sinks::{http, robots};
use super::Shared;
use reqwest::header::HeaderMap;
use std::time::Duration;
use telemetry::{SiteInfo, Timestamp};

/// The way to one target.
pub enum Channel {
    /// The platform or a webhook: `POST` the JSON.
    Http {
        /// The target's own client (its TLS files), or the shared one.
        client: reqwest::Client,
        url: reqwest::Url,
        secret: Option<String>,
        headers: HeaderMap,
        timeout: Duration,
    },
    Dingtalk {
        robot: Robot,
        secret: Option<String>,
    },
    Wecom {
        robot: Robot,
    },
    /// `topic` holds `{site}` (and `{subscriber}`, filled in already).
    Mqtt {
        sink: MqttSink,
        topic: String,
    },
}

impl Channel {
    /// One attempt. `now` (the gateway clock) stamps signatures.
    pub async fn send(
        &self,
        shared: &Shared,
        msg: &Message,
        site: Option<&SiteInfo>,
        now: Timestamp,
    ) -> Outcome {
        match self {
            Channel::Http {
                client,
                url,
                secret,
                headers,
                timeout,
            } => http::send(client, url, secret.as_deref(), headers, *timeout, msg, now).await,
            Channel::Dingtalk { robot, secret } => {
                robots::send_dingtalk(shared, robot, secret.as_deref(), msg, site, now).await
            }
            Channel::Wecom { robot } => robots::send_wecom(shared, robot, msg, site).await,
            Channel::Mqtt { sink, topic } => {
                sink.publish(topic.replace("{site}", msg.site()), msg.json())
                    .await
            }
        }
    }
}
