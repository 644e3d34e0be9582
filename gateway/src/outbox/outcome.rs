//! The end of one delivery attempt: delivered, retry (5xx, 408, 429, timeout, refused
//! connection) or refused for good (other 4xx, a robot's refusal: parked), as the contract
//! classifies HTTP statuses and robot replies.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

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
/// a 3xx (never followed: a target that moved must be configured again, not chased) and any
/// other 4xx refused, so parked. Anything else (1xx) is retried.
pub fn classify_status(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let snippet: String = body.chars().take(200).collect();
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status} {snippet}").trim_end().to_string(),
            after: retry_after,
        },
        300..=499 => Outcome::Refused {
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

pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
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
        for s in [301, 302, 307, 308] {
            assert!(
                matches!(classify_status(s, "", None), Outcome::Refused { status, .. } if status == s),
                "{s} is not followed: parked"
            );
        }
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
}
