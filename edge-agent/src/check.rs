//! `edge-agent check --connect`: one line for the broker (its CONNACK, or the refusal, e.g. a
//! wrong password) and one per Modbus device (a TCP connection to it, or for a serial line its
//! port opened), each within the configured timeout, nothing published and nothing polled.

use crate::config::AgentConfig;
use std::time::Duration;

/// One probe's line: `ok   WHAT WHERE: DETAIL` or `FAIL ...`.
fn line(what: &str, target: &str, r: Result<String, String>) -> (bool, String) {
    match r {
        Ok(d) => (true, format!("ok   {what} {target}: {d}")),
        Err(d) => (false, format!("FAIL {what} {target}: {d}")),
    }
}

/// Every probe of the configuration: (answered as it should, the line).
pub async fn connect(cfg: &AgentConfig) -> Vec<(bool, String)> {
    let m = &cfg.mqtt;
    let timeout = Duration::from_millis(m.timeout_ms.max(1000));
    let mut out = Vec::new();
    let r = match m.broker() {
        Ok(b) => {
            let creds = m
                .username
                .clone()
                .map(|u| (u, m.password.clone().unwrap_or_default()));
            crate::broker::probe::connack(&b, &cfg.client_id(), creds, timeout).await
        }
        Err(e) => Err(e.to_string()),
    };
    out.push(line("broker", &m.url, r));
    for d in &cfg.devices {
        if let (crate::config::Transport::RtuSerial, Some(port)) = (&d.transport, &d.serial_port) {
            // A serial line: the port opens for reading and writing (no frame is sent).
            let r = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(port)
                .map(|_| "the port opens".to_string())
                .map_err(|e| format!("the port does not open: {e}"));
            out.push(line(&format!("device {}", d.name), &d.endpoint(), r));
            continue;
        }
        let addr = format!("{}:{}", d.host, d.port);
        let t = Duration::from_millis(d.timeout_ms.max(100));
        let r = match tokio::time::timeout(t, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Ok("answered (TCP)".to_string()),
            Ok(Err(e)) => Err(format!("no answer: {e}")),
            Err(_) => Err(format!("no answer within {t:?}")),
        };
        out.push(line(&format!("device {}", d.name), &addr, r));
    }
    out
}
