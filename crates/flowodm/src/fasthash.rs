//! The hasher of the crate's internal maps on the message path.
//!
//! Their keys are schema registry ids, topic partitions and lanes: few, and not chosen by
//! whoever writes to the topics, so they need no protection against collision attacks. The
//! standard library's SipHash costs more than the rest of a lookup there; this hasher mixes
//! a word at a time with one multiplication.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Multiplicative hashing, a 64-bit word at a time (the scheme of rustc's own hasher).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

/// An odd constant with well-spread bits (2^64 divided by the golden ratio).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    /// The product's best-mixed bits are its high ones; hash tables index buckets with the
    /// low ones, so they are rotated down.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The last byte holds the length, so trailing zeros are not lost in the padding.
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            word[7] = rest.len() as u8;
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_i32(&mut self, n: i32) {
        self.add(u64::from(n as u32));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(value)
    }

    #[test]
    fn close_keys_spread_over_the_low_bits_tables_index_with() {
        // Sequential registry ids and the partitions of one topic land in distinct buckets
        // of a small table.
        let ids: HashSet<u64> = (1..=64u32).map(|id| hash(id) & 127).collect();
        assert!(ids.len() > 40, "{} of 64 distinct buckets", ids.len());
        let parts: HashSet<u64> = (0..12i32).map(|p| hash(("orders", p)) & 31).collect();
        assert!(parts.len() >= 9, "{} of 12 distinct buckets", parts.len());
    }

    #[test]
    fn every_byte_of_a_string_counts() {
        let a = hash("orders-partition-0001");
        assert_ne!(a, hash("orders-partition-0002"));
        assert_ne!(a, hash("Orders-partition-0001"));
        assert_ne!(hash("a"), hash("a\0"));
        assert_eq!(a, hash("orders-partition-0001"));
    }

    #[test]
    fn a_fast_map_is_a_map() {
        let mut m: FastMap<(String, i32), usize> = FastMap::default();
        for p in 0..100 {
            m.insert(("t".to_string(), p), p as usize);
        }
        assert_eq!(m.len(), 100);
        assert_eq!(m[&("t".to_string(), 42)], 42);
    }
}
