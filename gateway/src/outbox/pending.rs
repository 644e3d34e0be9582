//! `hrs_delivery_pending_since_seconds{target}`: when the oldest delivery still being tried
//! of each target began (Unix seconds, gateway clock; 0 when none is), so an alert can say a
//! target lags (`time() - x > 600`) without a timer. A delivery is pending from its first
//! attempt until it is delivered, parked or its target stops.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The `target` label of a target key: an endpoint's name (`endpoint:platform` ->
/// `platform`; endpoints are few, from the configuration), every subscriber together as
/// `subscribers` (they are many, added over the API).
pub fn target_label(key: &str) -> &str {
    match key.strip_prefix("endpoint:") {
        Some(name) => name,
        None => "subscribers",
    }
}

#[derive(Default)]
struct Book {
    /// Per label: (start ms, target key, site) of every pending delivery.
    by_label: HashMap<String, BTreeSet<(i64, String, String)>>,
}

#[derive(Clone)]
pub struct PendingSince {
    gauge: prometheus::GaugeVec,
    book: Arc<Mutex<Book>>,
}

/// A delivery pending until this is dropped.
pub struct Pending {
    owner: PendingSince,
    label: String,
    entry: (i64, String, String),
}

impl PendingSince {
    pub fn new(gauge: prometheus::GaugeVec) -> PendingSince {
        PendingSince {
            gauge,
            book: Default::default(),
        }
    }

    /// A delivery of a site's lane of `key` begins now (`now_ms`, gateway clock).
    pub fn begin(&self, key: &str, site: &str, now_ms: i64) -> Pending {
        let label = target_label(key).to_string();
        let entry = (now_ms, key.to_string(), site.to_string());
        {
            let mut b = self.book.lock().expect("pending lock");
            let set = b.by_label.entry(label.clone()).or_default();
            set.insert(entry.clone());
            self.set(&label, set);
        }
        Pending {
            owner: self.clone(),
            label,
            entry,
        }
    }

    fn set(&self, label: &str, set: &BTreeSet<(i64, String, String)>) {
        let oldest = set.first().map_or(0.0, |(ms, _, _)| *ms as f64 / 1000.0);
        self.gauge.with_label_values(&[label]).set(oldest);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut b = self.owner.book.lock().expect("pending lock");
        if let Some(set) = b.by_label.get_mut(&self.label) {
            set.remove(&self.entry);
            self.owner.set(&self.label, set);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(g: &prometheus::GaugeVec, label: &str) -> f64 {
        g.with_label_values(&[label]).get()
    }

    #[test]
    fn the_oldest_pending_delivery_of_a_target_sets_its_gauge() {
        let g = prometheus::GaugeVec::new(prometheus::Opts::new("g", "g"), &["target"]).unwrap();
        let p = PendingSince::new(g.clone());
        let a = p.begin("endpoint:platform", "mine-01", 60_000);
        let b = p.begin("endpoint:platform", "mine-02", 90_000);
        assert_eq!(value(&g, "platform"), 60.0);
        drop(a);
        assert_eq!(value(&g, "platform"), 90.0);
        drop(b);
        assert_eq!(value(&g, "platform"), 0.0, "none pending");
        // Every subscriber under one label: the label set stays small.
        let s1 = p.begin("subscriber:wang", "mine-01", 5_000);
        let _s2 = p.begin("subscriber:li", "mine-01", 7_000);
        assert_eq!(value(&g, "subscribers"), 5.0);
        drop(s1);
        assert_eq!(value(&g, "subscribers"), 7.0);
        assert_eq!(target_label("endpoint:province"), "province");
    }
}
