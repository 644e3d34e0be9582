//! One connection attempt to a broker, for `check --connect` of both programs: connect with a
//! clean session under a client id of its own (so a running program's persistent session is
//! not taken over), wait for the CONNACK within a timeout, and say in one line what answered.

use crate::Broker;
use std::time::Duration;

/// `Ok("connected as USER")`, or `Err` with the refusal or why nothing answered.
pub async fn connack(
    broker: &Broker,
    client_id: &str,
    credentials: Option<(String, String)>,
    timeout: Duration,
) -> Result<String, String> {
    let mut opts = broker.options(format!("{client_id}-check"));
    opts.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(5));
    let who = credentials.as_ref().map(|(u, _)| u.clone());
    if let Some((u, p)) = credentials {
        opts.set_credentials(u, p);
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
    let user = || who.as_deref().unwrap_or("none (anonymous)").to_string();
    let result = tokio::time::timeout(timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    return Ok(match &who {
                        Some(u) => format!("connected as {u}"),
                        None => "connected (anonymous)".to_string(),
                    })
                }
                Ok(_) => continue,
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    return Err(match code {
                        rumqttc::ConnectReturnCode::BadUserNamePassword => {
                            format!("refused: bad user name or password (user {})", user())
                        }
                        // Mosquitto answers a wrong password so (MQTT 3.1.1 code 5).
                        rumqttc::ConnectReturnCode::NotAuthorized => format!(
                            "refused: not authorized (a wrong password, or user {} may not connect)",
                            user()
                        ),
                        other => format!("refused: {other:?}"),
                    })
                }
                Err(e) => return Err(format!("no answer: {e}")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
    let _ = client.try_disconnect();
    result
}
