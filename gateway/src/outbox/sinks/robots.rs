//! DingTalk and WeCom group robots: a markdown text of the message, posted to the robot's
//! webhook (DingTalk signed with `timestamp` and `sign` when a secret is set). A robot
//! answers HTTP 200 with an `errcode`, classified by [`classify_robot_reply`].

use super::http::post;
use crate::outbox::message::Message;
use crate::outbox::outcome::Outcome;
use crate::outbox::sign;
use crate::outbox::Shared;
use std::time::Duration;
use telemetry::{format_time, EventKind, SiteInfo, Timestamp};

#[cfg(doc)]
use crate::outbox::outcome::classify_robot_reply;

/// Post the message to a DingTalk robot.
pub async fn send_dingtalk(
    shared: &Shared,
    url: &str,
    secret: Option<&str>,
    timeout: Duration,
    msg: &Message,
    site: Option<&SiteInfo>,
    now: Timestamp,
) -> Outcome {
    let url = match sign::dingtalk_url(url, secret, now.timestamp_millis()) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::Refused {
                status: 0,
                reason: e.to_string(),
            }
        }
    };
    let (title, text) = markdown(msg, site);
    let body =
        serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}});
    post(shared.http.post(url).timeout(timeout).json(&body), true).await
}

/// Post the message to a WeCom robot.
pub async fn send_wecom(
    shared: &Shared,
    url: &str,
    timeout: Duration,
    msg: &Message,
    site: Option<&SiteInfo>,
) -> Outcome {
    let (_title, text) = markdown(msg, site);
    let body = serde_json::json!({"msgtype": "markdown", "markdown": {"content": text}});
    post(shared.http.post(url).timeout(timeout).json(&body), true).await
}

/// A title and a markdown text for the robots (Chinese labels first, as duty staff read them).
pub fn markdown(msg: &Message, site: Option<&SiteInfo>) -> (String, String) {
    let site_label = |id: &str| match site.and_then(|s| s.name.as_deref()) {
        Some(name) => format!("{name} ({id})"),
        None => id.to_string(),
    };
    match msg {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let (title, text) = markdown(&Message::Event(Box::new(ev)), Some(&info));
        assert!(
            title.contains("CRITICAL") && title.contains("Zhaogu"),
            "{title}"
        );
        assert!(
            text.contains("coal.ch4.working_face") && text.contains("director"),
            "{text}"
        );
    }
}
