//! The Confluent wire format: how a schema-registry-aware Kafka message value is framed.
//!
//! ```text
//! byte 0      magic byte, always 0
//! bytes 1..5  schema id, a 32-bit big-endian integer: the id the registry gave the writer's schema
//! bytes 5..   the datum, Avro binary encoded with that schema
//! ```
//!
//! Every Confluent-compatible client (Java's `KafkaAvroSerializer`, confluent-kafka for Python and
//! Go, Karapace, Redpanda) writes and reads this layout, so messages framed here can be read by
//! them and the reverse. A reader uses the schema id to fetch the *writer's* schema from the
//! registry and resolves it against its own (reader) schema; that is what makes schema evolution
//! work without coordinating producers and consumers.
//!
//! Parsing is strict: a payload that does not start with the magic byte, or is shorter than the
//! 5-byte header, is an [`Error::Framing`], never a guess.

use crate::error::{Error, FramingError, Result};

/// The first byte of every framed payload.
pub const MAGIC_BYTE: u8 = 0;

/// The length of the header: the magic byte and the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// A framed payload, split into its schema id and its datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The registry id of the schema the datum was written with.
    pub schema_id: u32,
    /// The Avro binary datum that follows the header.
    pub datum: &'a [u8],
}

/// Splits a payload into its schema id and datum.
///
/// ```
/// let framed = flowodm::wire::parse(&[0, 0, 0, 0, 42, 0x02, 0x61]).unwrap();
/// assert_eq!(framed.schema_id, 42);
/// assert_eq!(framed.datum, &[0x02, 0x61]);
///
/// // No magic byte: an error, not a guess.
/// assert!(flowodm::wire::parse(&[0x02, 0x61]).is_err());
/// ```
pub fn parse(payload: &[u8]) -> Result<Framed<'_>> {
    let reason = match payload {
        [] => FramingError::Empty,
        [magic, ..] if *magic != MAGIC_BYTE => FramingError::BadMagicByte(*magic),
        [_, a, b, c, d, datum @ ..] => {
            return Ok(Framed {
                schema_id: u32::from_be_bytes([*a, *b, *c, *d]),
                datum,
            })
        }
        short => FramingError::Truncated { len: short.len() },
    };
    Err(Error::Framing { reason })
}

/// Appends the 5-byte header for `schema_id` to `buf`; append the datum after it.
///
/// Writing into a caller-owned buffer lets a producer reuse one allocation for every message.
///
/// ```
/// let mut buf = Vec::new();
/// flowodm::wire::write_header(&mut buf, 258);
/// buf.extend_from_slice(b"datum");
/// assert_eq!(&buf[..5], &[0, 0, 0, 1, 2]);
/// assert_eq!(flowodm::wire::parse(&buf).unwrap().datum, b"datum");
/// ```
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// Frames `datum` with `schema_id` into a new buffer.
///
/// ```
/// assert_eq!(flowodm::wire::frame(1, &[7]), vec![0, 0, 0, 0, 1, 7]);
/// ```
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + datum.len());
    write_header(&mut buf, schema_id);
    buf.extend_from_slice(datum);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(payload: &[u8]) -> FramingError {
        match parse(payload) {
            Err(Error::Framing { reason }) => reason,
            other => panic!("expected a framing error, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_every_id_width() {
        for id in [0, 1, 255, 256, 65_536, 16_777_216, u32::MAX] {
            let framed = frame(id, b"xyz");
            let parsed = parse(&framed).unwrap();
            assert_eq!(parsed.schema_id, id);
            assert_eq!(parsed.datum, b"xyz");
        }
    }

    #[test]
    fn empty_datum_is_allowed() {
        // An Avro record with no fields, or a null, encodes to zero bytes.
        let parsed = parse(&[0, 0, 0, 0, 9]).unwrap();
        assert_eq!(parsed.schema_id, 9);
        assert!(parsed.datum.is_empty());
    }

    #[test]
    fn rejects_what_is_not_framed() {
        assert_eq!(reason(&[]), FramingError::Empty);
        assert_eq!(reason(&[1, 0, 0, 0, 1]), FramingError::BadMagicByte(1));
        assert_eq!(reason(b"{\"json\":1}"), FramingError::BadMagicByte(b'{'));
        for len in 1..HEADER_LEN {
            assert_eq!(
                reason(&[0, 0, 0, 0][..len.min(4)]),
                FramingError::Truncated { len: len.min(4) }
            );
        }
    }
}
