//! Other MQTT brokers (upstream platforms, subscribers): publish at QoS 1 and wait for the
//! PUBACK of that publish's packet id, one message in flight at a time so the order per site
//! is kept.

use super::puback::PubAcks;
use crate::outbox::outcome::Outcome;
use crate::outbox::ForwardError;
use broker_link::Broker;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Publishes waiting for their PUBACK: each is told by its own packet id.
type Waiting = Arc<Mutex<PubAcks<oneshot::Sender<()>>>>;

/// A connection to another broker that publishes at QoS 1 and waits for each PUBACK.
pub struct MqttSink {
    client: AsyncClient,
    waiting: Waiting,
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
        let waiting: Waiting = Arc::default();
        let connected = Arc::new(AtomicBool::new(false));
        let (w, c) = (waiting.clone(), connected.clone());
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
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        c.store(true, Ordering::Relaxed);
                        backoff.reset();
                        if !ack.session_present {
                            // The client dropped what was not acknowledged: those publishes
                            // fail now (dropping their senders) and are retried.
                            w.lock().expect("pubacks lock").lost();
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        w.lock().expect("pubacks lock").written(pkid);
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let done = w.lock().expect("pubacks lock").acked(ack.pkid);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
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
            waiting,
            connected,
            one_at_a_time: tokio::sync::Mutex::new(()),
            timeout,
        })
    }

    /// Publish and wait for the PUBACK of its packet (one message in flight at a time: order
    /// is kept). A PUBACK of another packet (an earlier publish that timed out) confirms
    /// nothing here.
    pub async fn publish(&self, topic: String, body: Vec<u8>) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        if !self.connected.load(Ordering::Relaxed) {
            tracing::debug!(
                "upstream broker not connected yet; the publish waits for the connection"
            );
        }
        let wait = async {
            let (tx, rx) = oneshot::channel();
            // Handed before the request is queued: the event loop may write it at once.
            self.waiting.lock().expect("pubacks lock").handed(tx);
            if let Err(e) = self
                .client
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
            {
                self.waiting.lock().expect("pubacks lock").withdraw_last();
                return Err(e.to_string());
            }
            rx.await
                .map_err(|_| "the connection was lost before the PUBACK".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// One MQTT packet from the stream: its first byte and its body.
    async fn packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
        let first = s.read_u8().await.unwrap();
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = s.read_u8().await.unwrap();
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
        (first, body)
    }

    /// The packet id of the next PUBLISH (QoS 1) on the stream.
    async fn next_publish(s: &mut TcpStream) -> u16 {
        loop {
            let (first, body) = packet(s).await;
            if first >> 4 == 3 {
                let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                return u16::from_be_bytes([body[2 + topic_len], body[3 + topic_len]]);
            }
        }
    }

    async fn puback(s: &mut TcpStream, pkid: u16) {
        let [hi, lo] = pkid.to_be_bytes();
        s.write_all(&[0x40, 0x02, hi, lo]).await.unwrap();
    }

    /// A broker of the test's own, on the loopback, that acknowledges what the test says: a
    /// late PUBACK of an earlier publish does not confirm the publish in hand.
    #[tokio::test]
    async fn only_the_puback_of_its_own_packet_confirms_a_publish() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = Broker::resolve(
            &format!("mqtt://127.0.0.1:{port}"),
            false,
            &broker_link::TlsFiles::default(),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let sink = MqttSink::start(
            &broker,
            "fwd-test",
            None,
            Duration::from_millis(500),
            shutdown.clone(),
        )
        .unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let (connect, _) = packet(&mut s).await;
        assert_eq!(connect >> 4, 1, "CONNECT");
        s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();

        // A: never acknowledged in time.
        let (a, first) = tokio::join!(
            sink.publish("t".into(), b"A".to_vec()),
            next_publish(&mut s)
        );
        assert!(matches!(a, Outcome::Retry { .. }), "{a:?}");
        // B: the broker acknowledges A now, late, and never B: B is not delivered.
        let (b, _) = tokio::join!(sink.publish("t".into(), b"B".to_vec()), async {
            let second = next_publish(&mut s).await;
            assert_ne!(second, first);
            puback(&mut s, first).await;
        });
        assert!(
            matches!(&b, Outcome::Retry { reason, .. } if reason.contains("PUBACK")),
            "another packet's PUBACK confirmed B: {b:?}"
        );
        // C: its own PUBACK confirms it.
        let (c, _) = tokio::join!(sink.publish("t".into(), b"C".to_vec()), async {
            let third = next_publish(&mut s).await;
            puback(&mut s, third).await;
        });
        assert!(matches!(c, Outcome::Delivered), "{c:?}");
        shutdown.cancel();
    }
}
