//! DingTalk and WeCom group robots: a markdown text of the message in the `[presentation]`
//! language with its times in the configured zone (Beijing time by default), posted to the
//! robot's webhook (DingTalk signed with `timestamp` and `sign` when a secret is set). A
//! critical incident `@`s the duty mobiles (or everyone) that the subscriber names; DingTalk's
//! keyword security mode is met by a keyword at the head of every message. A robot answers HTTP
//! 200 with an `errcode`, classified by [`classify_robot_reply`].

use super::http::post;
use crate::outbox::message::Message;
use crate::outbox::outcome::Outcome;
use crate::outbox::sign;
use crate::outbox::Shared;
use presentation::{severity_word, state_word, Language, Presentation};
use std::time::Duration;
use telemetry::{EventKind, Severity, SiteInfo, Timestamp};

#[cfg(doc)]
use crate::outbox::outcome::classify_robot_reply;

/// A robot as a subscriber names it: its webhook, the client that reaches it (its own when
/// the subscriber names TLS files), the timeout of a post and whom it calls out.
pub struct Robot {
    pub client: reqwest::Client,
    pub url: String,
    pub timeout: Duration,
    pub mentions: Mentions,
}

/// Whom a robot's message for a critical incident calls out, and the keyword a DingTalk
/// robot in keyword security mode needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mentions {
    /// Duty mobiles `@`-ed on a critical incident.
    pub mobiles: Vec<String>,
    /// `@` everyone in the group on a critical incident.
    pub all: bool,
    /// Put at the head of every message (DingTalk's keyword security mode).
    pub keyword: Option<String>,
}

/// Whether a message calls people out: a critical incident's event.
fn calls_out(msg: &Message) -> bool {
    matches!(msg, Message::Event(e) if e.incident.severity == Severity::Critical)
}

/// Post the message to a DingTalk robot.
pub async fn send_dingtalk(
    shared: &Shared,
    robot: &Robot,
    secret: Option<&str>,
    msg: &Message,
    site: Option<&SiteInfo>,
    now: Timestamp,
) -> Outcome {
    let url = match sign::dingtalk_url(&robot.url, secret, now.timestamp_millis()) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::Refused {
                status: 0,
                reason: e.to_string(),
            }
        }
    };
    let body = dingtalk_body(msg, site, &shared.presentation, &robot.mentions);
    post(
        robot.client.post(url).timeout(robot.timeout).json(&body),
        true,
    )
    .await
}

/// The JSON a DingTalk robot takes: markdown, with `at` on a critical incident (the mobiles
/// also written into the text, as DingTalk asks for them to be highlighted).
pub fn dingtalk_body(
    msg: &Message,
    site: Option<&SiteInfo>,
    p: &Presentation,
    mentions: &Mentions,
) -> serde_json::Value {
    let (title, mut text) = markdown(msg, site, p, mentions.keyword.as_deref());
    let call = calls_out(msg) && (mentions.all || !mentions.mobiles.is_empty());
    if call {
        let who: Vec<String> = mentions.mobiles.iter().map(|m| format!("@{m}")).collect();
        text.push_str(&format!("\n\n{}", who.join(" ")));
    }
    let mut body =
        serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}});
    if call {
        body["at"] = serde_json::json!({"atMobiles": mentions.mobiles, "isAtAll": mentions.all});
    }
    body
}

/// Post the message to a WeCom robot.
pub async fn send_wecom(
    shared: &Shared,
    robot: &Robot,
    msg: &Message,
    site: Option<&SiteInfo>,
) -> Outcome {
    let body = wecom_body(msg, site, &shared.presentation, &robot.mentions);
    post(
        robot
            .client
            .post(&robot.url)
            .timeout(robot.timeout)
            .json(&body),
        true,
    )
    .await
}

/// The JSON a WeCom robot takes: markdown; a critical incident that calls people out goes as
/// text with `mentioned_mobile_list` (WeCom's markdown cannot mention by mobile).
pub fn wecom_body(
    msg: &Message,
    site: Option<&SiteInfo>,
    p: &Presentation,
    mentions: &Mentions,
) -> serde_json::Value {
    let (_title, text) = markdown(msg, site, p, mentions.keyword.as_deref());
    if calls_out(msg) && (mentions.all || !mentions.mobiles.is_empty()) {
        let mut list = mentions.mobiles.clone();
        if mentions.all {
            list.push("@all".into());
        }
        serde_json::json!({"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": list}})
    } else {
        serde_json::json!({"msgtype": "markdown", "markdown": {"content": text}})
    }
}

/// The words of a robot message in one language.
struct Words {
    site: &'static str,
    rule: &'static str,
    point: &'static str,
    value: &'static str,
    threshold: &'static str,
    state: &'static str,
    at: &'static str,
    incident: &'static str,
}

const ZH: Words = Words {
    site: "站点",
    rule: "规则",
    point: "测点",
    value: "数值",
    threshold: "阈值",
    state: "状态",
    at: "时间",
    incident: "事件编号",
};
const EN: Words = Words {
    site: "site",
    rule: "rule",
    point: "point",
    value: "value",
    threshold: "threshold",
    state: "state",
    at: "at",
    incident: "incident",
};

/// What an event says happened.
fn event_word(e: &telemetry::IncidentEvent, lang: Language) -> String {
    let tier = e.tier.as_deref().unwrap_or("?");
    match (lang, e.event) {
        (Language::ZhCn, EventKind::Notified) => format!("未确认告警升级通知（{tier}）"),
        (Language::En, EventKind::Notified) => format!("unacknowledged, escalated to {tier}"),
        (Language::ZhCn, k) => match k {
            EventKind::Raised => "发生告警",
            EventKind::Escalated => "告警升级",
            EventKind::Deescalated => "告警降级",
            EventKind::Cleared => "告警恢复",
            EventKind::Acknowledged => "已确认",
            EventKind::Closed => "已关闭（处置完毕）",
            EventKind::Commented => "备注",
            EventKind::Assigned => "已指派",
            EventKind::Shelved => "已搁置",
            EventKind::Unshelved => "取消搁置",
            EventKind::Overdue => "督办：超时未处理",
            k => k.as_str(),
        }
        .to_string(),
        (Language::En, k) => k.as_str().to_string(),
    }
}

/// A title and a markdown text for the robots, in the reader's language and time zone; the
/// site by name and region name, `keyword` (when set) at the head of both.
pub fn markdown(
    msg: &Message,
    site: Option<&SiteInfo>,
    p: &Presentation,
    keyword: Option<&str>,
) -> (String, String) {
    let lang = p.language;
    let w = if lang == Language::ZhCn { &ZH } else { &EN };
    let region = site
        .and_then(|s| s.region.as_ref())
        .and_then(|r| telemetry::regions::full_name(r.as_str()));
    let site_label = |id: &str| {
        let name = match site.and_then(|s| s.name.as_deref()) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        };
        match &region {
            Some(r) => format!("{name}，{r}"),
            None => name,
        }
    };
    let head = keyword.map(|k| format!("【{k}】")).unwrap_or_default();
    let (title, text) = match msg {
        Message::Event(e) => {
            let i = &e.incident;
            let sev = severity_word(i.severity, lang);
            let sev = if lang == Language::En {
                sev.to_uppercase()
            } else {
                sev.to_string()
            };
            let what = event_word(e, lang);
            let title = format!("[{sev}] {} {}", site_label(i.site.as_str()), what);
            let mut t = format!("### [{sev}] {what}\n\n");
            t.push_str(&format!("- {}: {}\n", w.site, site_label(i.site.as_str())));
            t.push_str(&format!("- {}: {}\n", w.rule, i.rule));
            if let Some(p) = &i.point {
                t.push_str(&format!("- {}: {p}\n", w.point));
            }
            if let Some(v) = &i.value {
                match i.threshold {
                    Some(th) => t.push_str(&format!("- {}: {v} ({} {th})\n", w.value, w.threshold)),
                    None => t.push_str(&format!("- {}: {v}\n", w.value)),
                }
            }
            t.push_str(&format!("- {}: {}\n", w.state, state_word(i.state, lang)));
            t.push_str(&format!("- {}: {}\n", w.at, p.time(&e.at)));
            t.push_str(&format!("\n> {}\n\n{} `{}`", i.message, w.incident, i.id));
            (title, t)
        }
        Message::Summary(s) => {
            let site = site_label(s.site.as_str());
            let (from, to) = (p.time(&s.from), p.time(&s.to));
            let (title, mut t) = match lang {
                Language::ZhCn => (
                    format!("[告警风暴] {site}：{} 起告警", s.raised),
                    format!(
                        "### 告警风暴：{site}\n\n{from} 至 {to} 共发生 {} 起告警（{} 条事件）；紧急告警已逐条发送。\n\n",
                        s.raised, s.events
                    ),
                ),
                Language::En => (
                    format!("[FLOOD] {site}: {} incidents", s.raised),
                    format!(
                        "### Flood at {site}\n\n{} incidents raised ({} events) from {from} to {to}; critical incidents were sent one by one.\n\n",
                        s.raised, s.events
                    ),
                ),
            };
            for (sev, n) in &s.by_severity {
                let word = telemetry::Severity::parse(sev)
                    .map(|s| severity_word(s, lang).to_string())
                    .unwrap_or_else(|| sev.clone());
                t.push_str(&format!("- {word}: {n}\n"));
            }
            t.push('\n');
            for i in &s.incidents {
                t.push_str(&format!(
                    "- [{}] {} {}: {}\n",
                    severity_word(i.severity, lang),
                    i.rule,
                    i.point.as_deref().unwrap_or(""),
                    i.message
                ));
            }
            if s.more > 0 {
                match lang {
                    Language::ZhCn => t.push_str(&format!("- …… 另有 {} 起\n", s.more)),
                    Language::En => t.push_str(&format!("- ... and {} more\n", s.more)),
                }
            }
            (title, t)
        }
    };
    (format!("{head}{title}"), format!("{head}{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn critical() -> Message {
        let mut ev = crate::outbox::filter::tests::event(
            "mine-01",
            "coal.ch4.working_face",
            telemetry::Severity::Critical,
            EventKind::Notified,
        );
        ev.tier = Some("director".into());
        ev.at = telemetry::parse_time("2026-07-28T02:00:00Z").unwrap();
        Message::Event(Box::new(ev))
    }

    fn mine() -> SiteInfo {
        SiteInfo {
            name: Some("赵固一矿".into()),
            region: Some(telemetry::RegionCode::new("410522").unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn a_robot_message_in_chinese_and_beijing_time() {
        let (title, text) = markdown(&critical(), Some(&mine()), &Presentation::default(), None);
        assert!(
            title.starts_with("[紧急] 赵固一矿 (mine-01)，河南省"),
            "{title}"
        );
        assert!(title.contains("未确认告警升级通知（director）"), "{title}");
        assert!(text.contains("- 规则: coal.ch4.working_face"), "{text}");
        assert!(text.contains("- 时间: 2026-07-28T10:00:00+08:00"), "{text}");
        assert!(text.contains("- 状态: 未确认"), "{text}");
        let en = Presentation {
            language: Language::En,
            ..Default::default()
        };
        let (title, text) = markdown(&critical(), Some(&mine()), &en, Some("HRS"));
        assert!(title.starts_with("【HRS】[CRITICAL]"), "{title}");
        assert!(text.contains("- at: 2026-07-28T10:00:00+08:00"), "{text}");
    }

    #[test]
    fn a_critical_incident_calls_out_the_duty_mobiles() {
        let m = Mentions {
            mobiles: vec!["13800000001".into()],
            all: false,
            keyword: Some("告警".into()),
        };
        let p = Presentation::default();
        let b = dingtalk_body(&critical(), None, &p, &m);
        assert_eq!(b["at"]["atMobiles"][0], "13800000001");
        assert_eq!(b["at"]["isAtAll"], false);
        let text = b["markdown"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("【告警】") && text.ends_with("@13800000001"),
            "{text}"
        );
        let w = wecom_body(&critical(), None, &p, &m);
        assert_eq!(w["msgtype"], "text");
        assert_eq!(w["text"]["mentioned_mobile_list"][0], "13800000001");
        // An alarm (not critical) calls nobody out.
        let Message::Event(mut ev) = critical() else {
            unreachable!()
        };
        ev.incident.severity = telemetry::Severity::Alarm;
        let b = dingtalk_body(&Message::Event(ev.clone()), None, &p, &m);
        assert!(b.get("at").is_none(), "{b}");
        assert_eq!(
            wecom_body(&Message::Event(ev), None, &p, &m)["msgtype"],
            "markdown"
        );
    }
}
