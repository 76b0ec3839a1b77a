//! One bounded cache type for what the pipeline remembers: parsed documents, validated
//! requests and automatic persisted queries. Least recently used entries go first, past a
//! number of entries or a total weight (bytes of text, for persisted queries).

use std::hash::Hash;
use std::sync::Mutex;

use lru::LruCache;

/// A least-recently-used map bounded by entries and by total weight, shared by every request.
pub(crate) struct BoundedCache<K: Hash + Eq, V: Clone> {
    inner: Mutex<Inner<K, V>>,
    max_entries: usize,
    max_weight: usize,
}

struct Inner<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    weight: usize,
}

impl<K: Hash + Eq, V: Clone> BoundedCache<K, V> {
    /// At most `entries` entries weighing at most `max_weight` together.
    pub(crate) fn new(entries: usize, max_weight: usize) -> Self {
        BoundedCache {
            // Unbounded to lru, which would otherwise allocate room for every entry at once
            // (8.9 MB for the response cache's bound): the bounds are kept here.
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                weight: 0,
            }),
            max_entries: entries.max(1),
            max_weight,
        }
    }

    /// At most `entries` entries, whatever their weight.
    pub(crate) fn with_entries(entries: usize) -> Self {
        Self::new(entries, usize::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic elsewhere cannot leave the map inconsistent: every change is one call.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock().entries.get(key).map(|(value, _)| value.clone())
    }

    /// Whether `key` is held (without touching its recency).
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.lock().entries.contains(key)
    }

    /// Remembers `value` of `weight` under `key`, forgetting the least recently used entries
    /// past the bounds. A value heavier than the whole cache is not kept. Returns how many
    /// entries were forgotten to make room.
    pub(crate) fn insert(&self, key: K, value: V, weight: usize) -> usize {
        if weight > self.max_weight {
            return 0;
        }
        let mut inner = self.lock();
        if let Some((_, (_, old))) = inner.entries.push(key, (value, weight)) {
            inner.weight -= old;
        }
        inner.weight += weight;
        let mut evicted = 0;
        while inner.weight > self.max_weight || inner.entries.len() > self.max_entries {
            match inner.entries.pop_lru() {
                Some((_, (_, dropped))) => {
                    inner.weight -= dropped;
                    evicted += 1;
                }
                None => break,
            }
        }
        evicted
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &K) {
        let mut inner = self.lock();
        if let Some((_, weight)) = inner.entries.pop(key) {
            inner.weight -= weight;
        }
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// The total weight held.
    pub(crate) fn weight(&self) -> usize {
        self.lock().weight
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedCache;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = BoundedCache::with_entries(2);
        cache.insert(1, "one", 1);
        cache.insert(2, "two", 1);
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.insert(3, "three", 1), 1, "one entry made room");
        assert_eq!(cache.get(&2), None, "two was used least recently");
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&3), Some("three"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_weight_is_bounded_too() {
        let cache = BoundedCache::new(10, 10);
        cache.insert("a", (), 4);
        cache.insert("b", (), 4);
        cache.insert("a", (), 5);
        assert_eq!(cache.weight(), 9, "a replaced value's weight is taken back");
        cache.insert("c", (), 4);
        assert!(!cache.contains(&"b"), "the oldest goes past the weight");
        assert_eq!(cache.weight(), 9);
        cache.insert("huge", (), 11);
        assert!(!cache.contains(&"huge"));
        assert_eq!(cache.len(), 2);
    }
}
