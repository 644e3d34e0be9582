//! Which PUBACK confirms which publish, by packet id. `rumqttc` gives a QoS 1 publish its
//! packet id inside the event loop, which reports it as `Outgoing::Publish(pkid)` when the
//! packet is written, and the broker's answer as `Incoming::PubAck { pkid }`. Publishes handed
//! to one client leave its event loop in the order they were handed, so the n-th new packet id
//! belongs to the n-th publish still waiting for one; a packet sent again after a reconnect
//! (the session resumed) keeps its id and is recognised as such.

use std::collections::{HashMap, VecDeque};

/// What was handed to one MQTT client and is not confirmed yet, each with its tag.
#[derive(Debug)]
pub struct PubAcks<T> {
    /// Handed to the client, in order, and not yet written with a packet id.
    waiting: VecDeque<T>,
    /// Written with a packet id, waiting for its PUBACK.
    in_flight: HashMap<u16, T>,
}

impl<T> Default for PubAcks<T> {
    fn default() -> Self {
        PubAcks {
            waiting: VecDeque::new(),
            in_flight: HashMap::new(),
        }
    }
}

impl<T> PubAcks<T> {
    /// A QoS 1 publish was handed to the client (call in the order of the `publish` calls).
    pub fn handed(&mut self, tag: T) {
        self.waiting.push_back(tag);
    }

    /// The last publish handed did not reach the client after all (its `publish` failed).
    pub fn withdraw_last(&mut self) -> Option<T> {
        self.waiting.pop_back()
    }

    /// The event loop wrote a publish with `pkid` (`Event::Outgoing(Outgoing::Publish)`).
    pub fn written(&mut self, pkid: u16) {
        if pkid == 0 || self.in_flight.contains_key(&pkid) {
            // QoS 0, or a packet sent again on a resumed session: it keeps its tag.
            return;
        }
        if let Some(tag) = self.waiting.pop_front() {
            self.in_flight.insert(pkid, tag);
        }
    }

    /// The broker acknowledged `pkid`: the tag of the publish it confirms, if it is ours.
    pub fn acked(&mut self, pkid: u16) -> Option<T> {
        self.in_flight.remove(&pkid)
    }

    /// The broker had no session for us (`session_present = false`): the client dropped what
    /// it had not got acknowledged, and none of it will be confirmed. Every tag, oldest first
    /// where known.
    pub fn lost(&mut self) -> Vec<T> {
        let mut ids: Vec<u16> = self.in_flight.keys().copied().collect();
        ids.sort_unstable();
        let mut all: Vec<T> = ids
            .into_iter()
            .filter_map(|id| self.in_flight.remove(&id))
            .collect();
        all.extend(self.waiting.drain(..));
        all
    }

    /// Publishes handed and not confirmed.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_puback_confirms_only_the_publish_of_its_packet_id() {
        let mut a = PubAcks::default();
        a.handed("e1");
        a.handed("e2");
        a.handed("e3");
        a.written(7);
        a.written(8);
        // A PUBACK of an id nobody of ours holds confirms nothing.
        assert_eq!(a.acked(9), None);
        // The broker acknowledges out of order: each ack names its own publish.
        assert_eq!(a.acked(8), Some("e2"));
        assert_eq!(a.acked(8), None, "once");
        a.written(9);
        assert_eq!(a.acked(9), Some("e3"));
        assert_eq!(a.len(), 1);
        assert_eq!(a.acked(7), Some("e1"));
        assert!(a.is_empty());
    }

    #[test]
    fn a_packet_sent_again_keeps_its_tag_and_a_lost_session_returns_all() {
        let mut a = PubAcks::default();
        a.handed(1);
        a.handed(2);
        a.written(1);
        // Reconnected, session resumed: packet 1 goes out again, then 2 gets its first id.
        a.written(1);
        a.written(2);
        assert_eq!(a.acked(2), Some(2));
        a.handed(3);
        assert_eq!(a.lost(), vec![1, 3]);
        assert!(a.is_empty());
        assert_eq!(a.acked(1), None);
    }
}
