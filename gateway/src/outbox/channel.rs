//! How a message reaches a target: an HTTP `POST` (the platform, webhooks), a DingTalk or WeCom
//! robot, or an MQTT publish on another broker. Each attempt ends in an [`Outcome`]: delivered,
//! retry (5xx, 408, 429, timeout, refused connection) or refused for good (other 4xx: parked).

use super::flood::FloodSummary;
use super::sign;
use super::{ForwardError, HeartbeatConfig, Shared};
use broker_link::Broker;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use telemetry::{format_time, EventKind, IncidentEvent, SiteInfo, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Try again later (the same message, the same idempotency key); `after` is the target's
    /// own wish (`Retry-After`), capped by the caller.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Refused for good: park it and go on.
    Refused {
        status: u16,
        reason: String,
    },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry { .. } => "retried",
            Outcome::Refused { .. } => "parked",
        }
    }
}

/// The contract's classification of an HTTP status: 2xx delivered; 5xx, 408 and 429 retried;
/// any other 4xx refused. Anything else (an unfollowed redirect, 1xx) is retried: it is not a
/// refusal the contract names, and parking would break the order per site.
pub fn classify_status(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let snippet: String = body.chars().take(200).collect();
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status} {snippet}").trim_end().to_string(),
            after: retry_after,
        },
        400..=499 => Outcome::Refused {
            status,
            reason: format!("HTTP {status} {snippet}").trim_end().to_string(),
        },
        _ => Outcome::Retry {
            reason: format!("HTTP {status} (unexpected)"),
            after: None,
        },
    }
}

/// A transport failure (timeout, refused connection, reset, DNS) is always retried.
pub fn classify_error(e: &reqwest::Error) -> Outcome {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    Outcome::Retry {
        reason: format!("{what}: {e}"),
        after: None,
    }
}

/// A robot answers HTTP 200 with `{"errcode":..,"errmsg":..}`: 0 is delivery; rate limits
/// (DingTalk 130101, WeCom 45009) and "system busy" (-1) are retried; other codes refused.
pub fn classify_robot_reply(body: &str) -> Outcome {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return Outcome::Delivered;
    };
    let code = v.get("errcode").and_then(|c| c.as_i64()).unwrap_or(0);
    let msg = v.get("errmsg").and_then(|m| m.as_str()).unwrap_or("");
    match code {
        0 => Outcome::Delivered,
        130101 | 45009 | -1 => Outcome::Retry {
            reason: format!("robot errcode {code}: {msg}"),
            after: Some(Duration::from_secs(10)),
        },
        _ => Outcome::Refused {
            status: 0,
            reason: format!("robot errcode {code}: {msg}"),
        },
    }
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What is sent: an incident event, or a flood summary in place of many.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Event(Box<IncidentEvent>),
    Summary(FloodSummary),
}

impl Message {
    /// The idempotency key: the event id (or summary id).
    pub fn id(&self) -> &str {
        match self {
            Message::Event(e) => &e.event_id,
            Message::Summary(s) => &s.summary_id,
        }
    }
    pub fn site(&self) -> &str {
        match self {
            Message::Event(e) => e.incident.site.as_str(),
            Message::Summary(s) => s.site.as_str(),
        }
    }
    pub fn json(&self) -> Vec<u8> {
        match self {
            Message::Event(e) => serde_json::to_vec(e),
            Message::Summary(s) => serde_json::to_vec(s),
        }
        .unwrap_or_default()
    }
    /// Back from a parked body.
    pub fn from_json(body: &str) -> Result<Message, ForwardError> {
        let v: serde_json::Value = serde_json::from_str(body)?;
        if v.get("event").and_then(|e| e.as_str()) == Some("flood_summary") {
            Ok(Message::Summary(serde_json::from_value(v)?))
        } else {
            Ok(Message::Event(Box::new(serde_json::from_value(v)?)))
        }
    }

    /// A title and a markdown text for the robots (Chinese labels first, as duty staff read them).
    pub fn markdown(&self, site: Option<&SiteInfo>) -> (String, String) {
        let site_label = |id: &str| match site.and_then(|s| s.name.as_deref()) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        };
        match self {
            Message::Event(e) => {
                let i = &e.incident;
                let sev = i.severity.as_str().to_uppercase();
                let what = match e.event {
                    EventKind::Notified => format!(
                        "未确认告警升级 escalation tier {}",
                        e.tier.as_deref().unwrap_or("?")
                    ),
                    k => k.as_str().to_string(),
                };
                let title = format!("[{sev}] {} {}", site_label(i.site.as_str()), what);
                let mut t = format!("### [{sev}] {what}\n\n");
                t.push_str(&format!("- 站点 site: {}\n", site_label(i.site.as_str())));
                t.push_str(&format!("- 规则 rule: {}\n", i.rule));
                if let Some(p) = &i.point {
                    t.push_str(&format!("- 测点 point: {p}\n"));
                }
                if let Some(v) = &i.value {
                    match i.threshold {
                        Some(th) => t.push_str(&format!("- 数值 value: {v} (threshold {th})\n")),
                        None => t.push_str(&format!("- 数值 value: {v}\n")),
                    }
                }
                t.push_str(&format!("- 状态 state: {}\n", i.state.as_str()));
                t.push_str(&format!("- 时间 at: {}\n", format_time(&e.at)));
                t.push_str(&format!("\n> {}\n\nincident `{}`", i.message, i.id));
                (title, t)
            }
            Message::Summary(s) => {
                let title = format!(
                    "[FLOOD] {}: {} incidents",
                    site_label(s.site.as_str()),
                    s.raised
                );
                let mut t = format!("### 告警风暴 flood at {}\n\n", site_label(s.site.as_str()));
                t.push_str(&format!(
                    "{} incidents raised ({} events) from {} to {}; critical incidents were sent one by one.\n\n",
                    s.raised,
                    s.events,
                    format_time(&s.from),
                    format_time(&s.to)
                ));
                for (sev, n) in &s.by_severity {
                    t.push_str(&format!("- {sev}: {n}\n"));
                }
                t.push('\n');
                for i in &s.incidents {
                    t.push_str(&format!(
                        "- [{}] {} {}: {}\n",
                        i.severity.as_str(),
                        i.rule,
                        i.point.as_deref().unwrap_or(""),
                        i.message
                    ));
                }
                if s.more > 0 {
                    t.push_str(&format!("- ... and {} more\n", s.more));
                }
                (title, t)
            }
        }
    }
}

/// A connection to another broker that publishes at QoS 1 and waits for each PUBACK.
pub struct MqttSink {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    acked_notify: Arc<Notify>,
    connected: Arc<AtomicBool>,
    one_at_a_time: tokio::sync::Mutex<()>,
    timeout: Duration,
}

impl MqttSink {
    /// Connect to `broker` (see [`Broker::resolve`]) as `client_id`, with `credentials` when
    /// the broker asks for them.
    pub fn start(
        broker: &Broker,
        client_id: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
        shutdown: CancellationToken,
    ) -> Result<MqttSink, ForwardError> {
        let mut opts = broker.options(client_id);
        if let Some((user, password)) = credentials {
            opts.set_credentials(user, password);
        }
        opts.set_keep_alive(Duration::from_secs(15))
            .set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let acked = Arc::new(AtomicU64::new(0));
        let acked_notify = Arc::new(Notify::new());
        let connected = Arc::new(AtomicBool::new(false));
        let (a, n, c) = (acked.clone(), acked_notify.clone(), connected.clone());
        let url = format!("{}:{}", broker.host, broker.port);
        tokio::spawn(async move {
            let mut backoff =
                retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            loop {
                let polled = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = eventloop.poll() => r,
                };
                match polled {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        c.store(true, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if c.swap(false, Ordering::Relaxed) {
                            tracing::warn!(%url, error = %e, "upstream broker connection lost");
                        }
                        tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(backoff.next_delay()) => {} }
                    }
                }
            }
        });
        Ok(MqttSink {
            client,
            acked,
            acked_notify,
            connected,
            one_at_a_time: tokio::sync::Mutex::new(()),
            timeout,
        })
    }

    /// Publish and wait for the PUBACK (one message in flight at a time: order is kept).
    pub async fn publish(&self, topic: String, body: Vec<u8>) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        if !self.connected.load(Ordering::Relaxed) {
            tracing::debug!(
                "upstream broker not connected yet; the publish waits for the connection"
            );
        }
        let before = self.acked.load(Ordering::Relaxed);
        let wait = async {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let notified = self.acked_notify.notified();
                if self.acked.load(Ordering::Relaxed) > before {
                    return Ok::<(), String>(());
                }
                notified.await;
            }
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(())) => Outcome::Delivered,
            Ok(Err(e)) => Outcome::Retry {
                reason: format!("publish: {e}"),
                after: None,
            },
            Err(_) => Outcome::Retry {
                reason: format!("no PUBACK within {:?}", self.timeout),
                after: None,
            },
        }
    }
}

/// The way to one target.
pub enum Channel {
    /// The platform or a webhook: `POST` the JSON.
    Http {
        url: reqwest::Url,
        secret: Option<String>,
        headers: HeaderMap,
        timeout: Duration,
    },
    Dingtalk {
        url: String,
        secret: Option<String>,
        timeout: Duration,
    },
    Wecom {
        url: String,
        timeout: Duration,
    },
    /// `topic` holds `{site}` (and `{subscriber}`, filled in already).
    Mqtt {
        sink: MqttSink,
        topic: String,
    },
}

pub fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, ForwardError> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| ForwardError::Config(format!("header {k:?}: {e}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|e| ForwardError::Config(format!("header {k:?}: {e}")))?;
        h.insert(name, value);
    }
    Ok(h)
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
                url,
                secret,
                headers,
                timeout,
            } => {
                let body = msg.json();
                let mut req = shared
                    .http
                    .post(url.clone())
                    .timeout(*timeout)
                    .headers(headers.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .header("Idempotency-Key", msg.id());
                if let Some(secret) = secret {
                    let ts = now.timestamp_millis().to_string();
                    req = req.header("X-HRS-Timestamp", &ts).header(
                        "X-HRS-Signature",
                        sign::platform_signature(secret, &ts, &body),
                    );
                }
                post(req.body(body), false).await
            }
            Channel::Dingtalk {
                url,
                secret,
                timeout,
            } => {
                let url = match sign::dingtalk_url(url, secret.as_deref(), now.timestamp_millis()) {
                    Ok(u) => u,
                    Err(e) => {
                        return Outcome::Refused {
                            status: 0,
                            reason: e.to_string(),
                        }
                    }
                };
                let (title, text) = msg.markdown(site);
                let body = serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}});
                post(shared.http.post(url).timeout(*timeout).json(&body), true).await
            }
            Channel::Wecom { url, timeout } => {
                let (_title, text) = msg.markdown(site);
                let body =
                    serde_json::json!({"msgtype": "markdown", "markdown": {"content": text}});
                post(
                    shared.http.post(url.as_str()).timeout(*timeout).json(&body),
                    true,
                )
                .await
            }
            Channel::Mqtt { sink, topic } => {
                sink.publish(topic.replace("{site}", msg.site()), msg.json())
                    .await
            }
        }
    }
}

async fn post(req: reqwest::RequestBuilder, robot: bool) -> Outcome {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            if (200..300).contains(&status) && !robot {
                return Outcome::Delivered;
            }
            let body = resp.text().await.unwrap_or_default();
            match classify_status(status, &body, after) {
                Outcome::Delivered if robot => classify_robot_reply(&body),
                o => o,
            }
        }
        Err(e) => classify_error(&e),
    }
}

/// Post a heartbeat every `interval_ms` so the platform can tell a quiet gateway from a dead one.
pub async fn run_heartbeat(
    cfg: HeartbeatConfig,
    gateway: String,
    shared: Shared,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let name = cfg.gateway.clone().unwrap_or(gateway);
    let db = crate::store::outbox::Db::new(&shared.store);
    let url = match reqwest::Url::parse(&cfg.url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "heartbeat url; no heartbeats");
            return;
        }
    };
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = ticker.tick() => {} }
        let now = shared.clock.now();
        let body = serde_json::json!({
            "kind": "heartbeat",
            "gateway": name,
            "at": format_time(&now),
            "last_event_pos": db.max_pos().await.ok(),
            "parked": shared.metrics.parked.get(),
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut req = shared
            .http
            .post(url.clone())
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &cfg.secret {
            let ts = now.timestamp_millis().to_string();
            req = req.header("X-HRS-Timestamp", &ts).header(
                "X-HRS-Signature",
                sign::platform_signature(secret, &ts, &body),
            );
        }
        let outcome = post(req.body(body), false).await;
        shared
            .metrics
            .heartbeats
            .with_label_values(&[if outcome == Outcome::Delivered {
                "delivered"
            } else {
                "failed"
            }])
            .inc();
        if let Outcome::Retry { reason, .. } | Outcome::Refused { reason, .. } = &outcome {
            tracing::debug!(%reason, "heartbeat not taken");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification_follows_the_contract() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify_status(s, "", None), Outcome::Delivered, "{s}");
        }
        for s in [500, 502, 503, 504, 599, 408, 429] {
            assert!(
                matches!(classify_status(s, "", None), Outcome::Retry { .. }),
                "{s} is retried"
            );
        }
        for s in [400, 401, 403, 404, 409, 410, 413, 422, 499] {
            assert!(
                matches!(classify_status(s, "bad", None), Outcome::Refused { status, .. } if status == s),
                "{s} is parked"
            );
        }
        assert!(matches!(
            classify_status(302, "", None),
            Outcome::Retry { .. }
        ));
        assert_eq!(
            classify_status(503, "", Some(Duration::from_secs(7))),
            Outcome::Retry {
                reason: "HTTP 503".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(classify_status(400, "", None).label(), "parked");
    }

    #[test]
    fn robot_replies() {
        assert_eq!(
            classify_robot_reply(r#"{"errcode":0,"errmsg":"ok"}"#),
            Outcome::Delivered
        );
        assert!(matches!(
            classify_robot_reply(r#"{"errcode":130101,"errmsg":"send too fast"}"#),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify_robot_reply(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify_robot_reply(r#"{"errcode":310000,"errmsg":"sign not match"}"#),
            Outcome::Refused { .. }
        ));
        assert_eq!(classify_robot_reply("not json"), Outcome::Delivered);
    }

    #[tokio::test]
    async fn refused_connection_and_timeout_are_retried() {
        let client = reqwest::Client::new();
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = post(
            client
                .post(format!("http://127.0.0.1:{port}/"))
                .timeout(Duration::from_secs(2)),
            false,
        )
        .await;
        assert!(
            matches!(&o, Outcome::Retry { reason, .. } if reason.contains("connection")),
            "{o:?}"
        );
        // A server that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                let (s, _) = l.accept().await.unwrap();
                conns.push(s);
            }
        });
        let o = post(
            client
                .post(format!("http://{addr}/"))
                .timeout(Duration::from_millis(300)),
            false,
        )
        .await;
        assert!(
            matches!(&o, Outcome::Retry { reason, .. } if reason.contains("timeout")),
            "{o:?}"
        );
        hold.abort();
    }

    #[test]
    fn markdown_names_site_rule_and_tier() {
        let mut ev = crate::outbox::filter::tests::event(
            "mine-01",
            "coal.ch4.working_face",
            telemetry::Severity::Critical,
            EventKind::Notified,
        );
        ev.tier = Some("director".into());
        let info = SiteInfo {
            name: Some("Zhaogu No.1 mine".into()),
            ..Default::default()
        };
        let (title, text) = Message::Event(Box::new(ev.clone())).markdown(Some(&info));
        assert!(
            title.contains("CRITICAL") && title.contains("Zhaogu"),
            "{title}"
        );
        assert!(
            text.contains("coal.ch4.working_face") && text.contains("director"),
            "{text}"
        );
        let back = Message::from_json(
            std::str::from_utf8(&Message::Event(Box::new(ev.clone())).json()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, Message::Event(Box::new(ev)));
    }
}
