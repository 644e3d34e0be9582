//! What a target is sent: an incident event, or a flood summary in place of many, with its
//! idempotency key and its JSON body.

use super::flood::FloodSummary;
use super::ForwardError;
use telemetry::IncidentEvent;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::EventKind;

    #[test]
    fn a_parked_body_comes_back_as_the_message() {
        let ev = crate::outbox::filter::tests::event(
            "mine-01",
            "coal.ch4.working_face",
            telemetry::Severity::Critical,
            EventKind::Notified,
        );
        let back = Message::from_json(
            std::str::from_utf8(&Message::Event(Box::new(ev.clone())).json()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, Message::Event(Box::new(ev)));
    }
}
