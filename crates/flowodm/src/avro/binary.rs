//! Avro's binary encoding: the primitives every generated encoder and decoder is built from.
//!
//! `int` and `long` are zig-zag varints, `float` and `double` little-endian IEEE 754, `bytes` and
//! `string` a length (a `long`) followed by that many bytes, `boolean` one byte. Arrays and maps
//! are sequences of blocks, each a count followed by that many items, ended by a zero count; a
//! negative count is followed by the block's size in bytes.
//!
//! [`Reader`] never trusts a length: every length is checked against the bytes that remain
//! before anything is allocated, so a corrupt or hostile payload yields an error, never a panic
//! or an unbounded allocation.

use crate::error::{Error, Result};

/// Appends a `long` (zig-zag varint).
#[inline]
pub fn write_long(buf: &mut Vec<u8>, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Appends an `int` (zig-zag varint).
#[inline]
pub fn write_int(buf: &mut Vec<u8>, value: i32) {
    write_long(buf, i64::from(value));
}

/// Appends a `boolean`.
#[inline]
pub fn write_bool(buf: &mut Vec<u8>, value: bool) {
    buf.push(u8::from(value));
}

/// Appends a `float`.
#[inline]
pub fn write_float(buf: &mut Vec<u8>, value: f32) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Appends a `double`.
#[inline]
pub fn write_double(buf: &mut Vec<u8>, value: f64) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Appends `bytes` (or a `string`'s UTF-8): the length, then the bytes.
#[inline]
pub fn write_bytes(buf: &mut Vec<u8>, value: &[u8]) {
    write_long(buf, value.len() as i64);
    buf.extend_from_slice(value);
}

/// A cursor over an Avro binary datum that checks every read against the remaining input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    depth: u32,
}

/// How deeply records may nest in one datum (recursive types); deeper data is rejected instead of
/// overflowing the stack.
pub const MAX_DEPTH: u32 = 256;

fn truncated(what: &str) -> Error {
    Error::Deserialization {
        message: format!("the datum ends in the middle of {what}"),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::Deserialization {
        message: message.into(),
    }
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, depth: 0 }
    }

    /// Enters a nested record; fails past [`MAX_DEPTH`].
    #[inline]
    pub fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid(format!(
                "records nest deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    /// Leaves a nested record.
    #[inline]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read: a datum with trailing bytes was written with another
    /// schema than the one it is read with.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!(
                "{} byte(s) left after the datum; it was written with another schema",
                self.buf.len()
            )))
        }
    }

    /// Reads a `long`.
    #[inline]
    pub fn read_long(&mut self) -> Result<i64> {
        let mut value: u64 = 0;
        let mut shift = 0;
        for (i, &byte) in self.buf.iter().enumerate() {
            if shift == 63 && byte > 1 {
                return Err(invalid("a varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(invalid("a varint is longer than 10 bytes"));
            }
        }
        Err(truncated("a varint"))
    }

    /// Reads an `int`.
    #[inline]
    pub fn read_int(&mut self) -> Result<i32> {
        let v = self.read_long()?;
        i32::try_from(v).map_err(|_| invalid(format!("{v} does not fit an Avro int")))
    }

    /// Reads a `boolean`.
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool> {
        match self.take(1, "a boolean")? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(invalid(format!("{b:#04x} is not a boolean"))),
            _ => unreachable!("took one byte"),
        }
    }

    /// Reads a `float`.
    #[inline]
    pub fn read_float(&mut self) -> Result<f32> {
        let b = self.take(4, "a float")?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a `double`.
    #[inline]
    pub fn read_double(&mut self) -> Result<f64> {
        let b = self.take(8, "a double")?;
        Ok(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// Reads a length and checks that many bytes remain.
    #[inline]
    pub fn read_len(&mut self, what: &str) -> Result<usize> {
        let len = self.read_long()?;
        if len < 0 {
            return Err(invalid(format!("negative length {len} of {what}")));
        }
        let len = len as u64;
        if len > self.buf.len() as u64 {
            return Err(invalid(format!(
                "{what} claims {len} bytes but only {} remain",
                self.buf.len()
            )));
        }
        Ok(len as usize)
    }

    /// Reads `bytes`, borrowing them from the input.
    #[inline]
    pub fn read_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.read_len("bytes")?;
        self.take(len, "bytes")
    }

    /// Reads a `string`, borrowing it from the input.
    #[inline]
    pub fn read_str(&mut self) -> Result<&'a str> {
        let len = self.read_len("a string")?;
        let bytes = self.take(len, "a string")?;
        std::str::from_utf8(bytes).map_err(|e| invalid(format!("a string is not UTF-8: {e}")))
    }

    /// Reads `n` bytes (a `fixed`).
    #[inline]
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads the count of the next array or map block: 0 ends the sequence. The count is checked
    /// against the remaining input so that no caller allocates for items that cannot be there.
    #[inline]
    pub fn read_block_count(&mut self) -> Result<usize> {
        let count = self.read_long()?;
        let count = if count < 0 {
            // A negative count is followed by the block's size in bytes, which we do not need.
            let _size = self.read_long()?;
            count.unsigned_abs()
        } else {
            count as u64
        };
        // Every item takes at least one byte, except items of zero-size types (null, empty
        // records); allow those a bounded number so a hostile count cannot spin forever.
        let limit = (self.buf.len() as u64).max(MAX_ZERO_SIZE_ITEMS);
        if count > limit {
            return Err(invalid(format!(
                "a block claims {count} items but only {} bytes remain",
                self.buf.len()
            )));
        }
        Ok(count as usize)
    }

    /// A capacity hint for `count` items: never more than the remaining input could hold.
    #[inline]
    pub fn capacity_for(&self, count: usize) -> usize {
        count.min(self.buf.len())
    }
}

/// How many zero-size items one block may claim beyond the remaining input.
const MAX_ZERO_SIZE_ITEMS: u64 = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn long_bytes(v: i64) -> Vec<u8> {
        let mut b = Vec::new();
        write_long(&mut b, v);
        b
    }

    #[test]
    fn zigzag_matches_the_spec() {
        // From the Avro specification's table.
        assert_eq!(long_bytes(0), [0x00]);
        assert_eq!(long_bytes(-1), [0x01]);
        assert_eq!(long_bytes(1), [0x02]);
        assert_eq!(long_bytes(-2), [0x03]);
        assert_eq!(long_bytes(2), [0x04]);
        assert_eq!(long_bytes(-64), [0x7f]);
        assert_eq!(long_bytes(64), [0x80, 0x01]);
    }

    #[test]
    fn longs_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let bytes = long_bytes(v);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.read_long().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        assert!(Reader::new(&[0xff; 11]).read_long().is_err());
        assert!(Reader::new(&[0x80]).read_long().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .read_long()
                .is_err()
        );
        let too_big = long_bytes(i64::from(i32::MAX) + 1);
        assert!(Reader::new(&too_big).read_int().is_err());
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let mut b = long_bytes(1 << 40);
        b.extend_from_slice(b"abc");
        let err = Reader::new(&b).read_bytes().unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
        assert!(Reader::new(&long_bytes(-3)).read_str().is_err());
        let mut count = long_bytes(i64::MAX);
        count.push(0);
        assert!(Reader::new(&count).read_block_count().is_err());
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut b = Vec::new();
        write_bytes(&mut b, &[0xff, 0xfe]);
        assert!(Reader::new(&b).read_str().is_err());
        let mut b = Vec::new();
        write_bytes(&mut b, "grüß".as_bytes());
        assert_eq!(Reader::new(&b).read_str().unwrap(), "grüß");
    }

    #[test]
    fn booleans_are_zero_or_one() {
        assert!(!Reader::new(&[0]).read_bool().unwrap());
        assert!(Reader::new(&[1]).read_bool().unwrap());
        assert!(Reader::new(&[2]).read_bool().is_err());
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let r = Reader::new(&[1, 2]);
        assert!(r.finish().is_err());
    }
}
