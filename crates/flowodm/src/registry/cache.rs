//! The client's caches: answers that do not change, kept so they are fetched once.
//!
//! A schema id always names the same schema, so `id → schema` never goes stale, and a version
//! number of a subject names one schema until that version is deleted. A schema's id
//! under a subject only changes when the subject's versions are deleted, which this client
//! notices when it does the deleting (it forgets that subject's entries); deletes made by
//! someone else are not seen until the entry is evicted.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use super::types::{Schema, SubjectVersion};

/// The default number of entries each cache holds.
pub(crate) const DEFAULT_CAPACITY: usize = 1000;

/// A bounded map that forgets its oldest entries first; safe to share between threads.
#[derive(Debug)]
pub(crate) struct Cache<K, V> {
    capacity: usize,
    inner: Mutex<Fifo<K, V>>,
}

#[derive(Debug)]
struct Fifo<K, V> {
    /// Each value with the generation it was inserted in.
    map: HashMap<K, (V, u64)>,
    /// Keys in insertion order; an entry whose generation no longer matches the map is stale.
    order: VecDeque<(K, u64)>,
    next_generation: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            inner: Mutex::new(Fifo {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_generation: 0,
            }),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock().map.get(key).map(|(v, _)| v.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut fifo = self.lock();
        if let Some(entry) = fifo.map.get_mut(&key) {
            entry.0 = value;
            return;
        }
        while fifo.map.len() >= self.capacity {
            match fifo.order.pop_front() {
                Some((old, generation)) => {
                    if fifo.map.get(&old).is_some_and(|(_, g)| *g == generation) {
                        fifo.map.remove(&old);
                    }
                }
                None => break,
            }
        }
        let generation = fifo.next_generation;
        fifo.next_generation += 1;
        fifo.order.push_back((key.clone(), generation));
        fifo.map.insert(key, (value, generation));
    }

    /// Forgets every entry whose key matches.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        let mut fifo = self.lock();
        fifo.map.retain(|k, _| keep(k));
        // Drop the stale order entries too, so the queue stays as long as the map.
        let Fifo { map, order, .. } = &mut *fifo;
        order.retain(|(k, g)| map.get(k).is_some_and(|(_, current)| current == g));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fifo<K, V>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters for a cache, so a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What identifies a registration or lookup: the subject, the schema with its references,
/// and whether the registry was asked to normalise it.
pub(crate) type SubjectSchemaKey = (String, Schema, bool);

/// The caches one client (and all its clones) share.
#[derive(Debug)]
pub(crate) struct Caches {
    /// id → schema (`GET /schemas/ids/{id}`).
    pub(crate) schemas: Cache<u32, Schema>,
    /// (subject, schema) → id (`POST /subjects/{s}/versions`, also filled by lookups).
    pub(crate) ids: Cache<SubjectSchemaKey, u32>,
    /// (subject, schema) → version (`POST /subjects/{s}`).
    pub(crate) versions: Cache<SubjectSchemaKey, SubjectVersion>,
    /// (subject, version number) → version: the schemas that references name.
    pub(crate) numbered: Cache<(String, u32), SubjectVersion>,
}

impl Caches {
    pub(crate) fn new(capacity: usize) -> Self {
        Caches {
            schemas: Cache::new(capacity),
            ids: Cache::new(capacity),
            versions: Cache::new(capacity),
            numbered: Cache::new(capacity),
        }
    }

    /// Forgets what is known about `subject`'s registrations, after deleting from it.
    pub(crate) fn forget_subject(&self, subject: &str) {
        self.ids.retain(|(s, _, _)| s != subject);
        self.versions.retain(|(s, _, _)| s != subject);
        self.numbered.retain(|(s, _)| s != subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_entries_and_forgets_the_oldest() {
        let cache = Cache::new(2);
        cache.insert(1, "one");
        cache.insert(2, "two");
        cache.insert(3, "three");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("two"));
        assert_eq!(cache.get(&3), Some("three"));
    }

    #[test]
    fn reinserting_updates_without_growing() {
        let cache = Cache::new(2);
        cache.insert(1, "one");
        cache.insert(1, "uno");
        cache.insert(2, "two");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&1), Some("uno"));
    }

    #[test]
    fn a_removed_and_reinserted_key_is_not_evicted_by_its_old_position() {
        let cache = Cache::new(2);
        cache.insert(1, "one");
        cache.insert(2, "two");
        cache.retain(|k| *k != 1);
        cache.insert(1, "one again");
        cache.insert(3, "three"); // evicts 2, the oldest live entry, not the new 1
        assert_eq!(cache.get(&1), Some("one again"));
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.get(&3), Some("three"));
    }

    #[test]
    fn capacity_zero_disables_the_cache() {
        let cache = Cache::new(0);
        cache.insert(1, "one");
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn forgetting_a_subject_keeps_the_others_and_the_ids() {
        let caches = Caches::new(10);
        let schema = Schema::avro("\"string\"");
        caches.ids.insert(("a".into(), schema.clone(), false), 1);
        caches.ids.insert(("b".into(), schema.clone(), false), 1);
        caches.schemas.insert(1, schema.clone());
        caches.forget_subject("a");
        assert_eq!(caches.ids.get(&("a".into(), schema.clone(), false)), None);
        assert_eq!(
            caches.ids.get(&("b".into(), schema.clone(), false)),
            Some(1)
        );
        assert_eq!(caches.schemas.get(&1), Some(schema));
    }

    #[test]
    fn is_shared_across_threads() {
        let cache = std::sync::Arc::new(Cache::new(100));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        cache.insert(t * 25 + i, i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cache.len(), 100);
    }
}
