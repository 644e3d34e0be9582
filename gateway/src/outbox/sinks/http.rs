//! HTTP endpoints (the supervision platform, further endpoints, webhooks): `POST` the JSON
//! with its idempotency key, signed (`X-HRS-Timestamp`, `X-HRS-Signature`) when a secret is
//! set; the status classified by the contract.

use crate::outbox::message::Message;
use crate::outbox::outcome::{
    classify_error, classify_robot_reply, classify_status, retry_after, Outcome,
};
use crate::outbox::{sign, ForwardError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::collections::BTreeMap;
use std::time::Duration;
use telemetry::Timestamp;

/// One `POST` of the message to `url`; `now` (the gateway clock) stamps the signature.
pub async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: Option<&str>,
    headers: &HeaderMap,
    timeout: Duration,
    msg: &Message,
    now: Timestamp,
) -> Outcome {
    let body = msg.json();
    let req = client
        .post(url.clone())
        .timeout(timeout)
        .headers(headers.clone())
        .header("Idempotency-Key", msg.id());
    post(signed(req, secret, now, body), false).await
}

/// A JSON body on the request, signed with `secret` when there is one.
pub(crate) fn signed(
    req: reqwest::RequestBuilder,
    secret: Option<&str>,
    now: Timestamp,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let mut req = req.header(CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        let ts = now.timestamp_millis().to_string();
        req = req.header("X-HRS-Timestamp", &ts).header(
            "X-HRS-Signature",
            sign::platform_signature(secret, &ts, &body),
        );
    }
    req.body(body)
}

/// Extra request headers of an endpoint's configuration.
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

/// The most of a refusal's (or a robot's) answer read: enough for its reason.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// Send a request and classify the answer (`robot`: a 200 carries the robot's own verdict).
pub(crate) async fn post(req: reqwest::RequestBuilder, robot: bool) -> Outcome {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            if (200..300).contains(&status) && !robot {
                return Outcome::Delivered;
            }
            let body = crate::outbound::body_snippet(resp, ERROR_BODY_BYTES).await;
            match classify_status(status, &body, after) {
                Outcome::Delivered if robot => classify_robot_reply(&body),
                o => o,
            }
        }
        Err(e) => classify_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
