//! Point look-up within a site: the keyed hash map type of the engine, and [`PointIndex`]
//! (point id -> dense point index, verified against the point's inline id).

use foldhash::fast::FixedState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use telemetry::PointId;

/// Maps keyed by ids from the network hash with a key the gateway draws per process
/// ([`EngineConfig::hash_seed`]), so nobody outside can make ids that collide. Nothing the
/// engine puts out depends on their order.
pub(super) type KeyedMap<K, V> = std::collections::HashMap<K, V, FixedState>;

/// A point id of up to 31 bytes, inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InlineKey {
    len: u8,
    bytes: [u8; 31],
}

impl InlineKey {
    pub(super) fn new(s: &str) -> InlineKey {
        let mut k = InlineKey {
            len: u8::MAX,
            bytes: [0; 31],
        };
        if s.len() <= 31 {
            k.len = s.len() as u8;
            k.bytes[..s.len()].copy_from_slice(s.as_bytes());
        }
        k
    }
    /// `Some(equal)` when the key is inline, `None` for a long id (compare the id itself).
    #[inline]
    fn eq_str(&self, s: &str) -> Option<bool> {
        if self.len == u8::MAX {
            None
        } else {
            Some(self.len as usize == s.len() && &self.bytes[..s.len().min(31)] == s.as_bytes())
        }
    }
}

/// What [`PointIndex`] verifies a hit against: the point's inline id, and its id.
pub(super) trait Keyed {
    fn inline_key(&self) -> &InlineKey;
    fn id_str(&self) -> &str;
}

/// Point id -> dense point index within a site: a map from the id's 64-bit hash (an
/// integer key: no string hashing inside the table, no key on the heap), verified against
/// the point's inline id. Ids whose hash is taken by another id go to `overflow`.
#[derive(Debug, Clone)]
pub(super) struct PointIndex {
    state: FixedState,
    by_hash: KeyedMap<u64, u32>,
    overflow: BTreeMap<PointId, u32>,
}

impl Default for PointIndex {
    fn default() -> Self {
        PointIndex::new(FixedState::with_seed(0))
    }
}

impl PointIndex {
    pub(super) fn new(state: FixedState) -> Self {
        PointIndex {
            by_hash: KeyedMap::with_hasher(state.clone()),
            state,
            overflow: BTreeMap::new(),
        }
    }

    #[inline]
    fn id_hash(&self, s: &str) -> u64 {
        self.state.hash_one(s)
    }

    #[inline]
    pub(super) fn get<P: Keyed>(&self, id: &str, points: &[P]) -> Option<u32> {
        if let Some(&p) = self.by_hash.get(&self.id_hash(id)) {
            let pt = &points[p as usize];
            if pt
                .inline_key()
                .eq_str(id)
                .unwrap_or_else(|| pt.id_str() == id)
            {
                return Some(p);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(id).copied()
        }
    }

    pub(super) fn insert(&mut self, id: &PointId, p: u32) {
        match self.by_hash.entry(self.id_hash(id.as_str())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(p);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(id.clone(), p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point as the index sees it.
    struct Pt {
        key: InlineKey,
        id: PointId,
    }

    impl Keyed for Pt {
        fn inline_key(&self) -> &InlineKey {
            &self.key
        }
        fn id_str(&self) -> &str {
            self.id.as_str()
        }
    }

    #[test]
    fn point_index_handles_long_ids_and_hash_collisions() {
        let mut points = Vec::new();
        let mut idx = PointIndex::default();
        let ids = ["CH4-101", &"L".repeat(64), "a"];
        for (i, id) in ids.iter().enumerate() {
            let pid = PointId::new(*id).unwrap();
            points.push(Pt {
                key: InlineKey::new(id),
                id: pid.clone(),
            });
            idx.insert(&pid, i as u32);
        }
        assert_eq!(idx.get("CH4-101", &points), Some(0));
        assert_eq!(idx.get(&"L".repeat(64), &points), Some(1));
        assert_eq!(idx.get(&"L".repeat(63), &points), None);
        assert_eq!(idx.get("CH4-10", &points), None);
        // A forced collision: the second id lands in the overflow map and is still found.
        let mut forced = PointIndex::default();
        let h = forced.id_hash("a");
        forced.by_hash.insert(h, 0); // "a"'s slot taken by point 0 (CH4-101)
        forced.insert(&PointId::new("a").unwrap(), 2);
        assert_eq!(forced.get("a", &points), Some(2));
        assert_eq!(forced.get("CH4-101", &points), None);
    }
}
