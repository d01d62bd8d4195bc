//! Field-level reading and writing: integers, UTF-8 strings, binary data.
//!
//! [`Reader`] walks one packet body and reports every shortfall as
//! [`CodecError::Truncated`] naming the packet and field. Strings are checked as MQTT
//! requires (MQTT-1.5.4-1/-2/-3): well-formed UTF-8 (no surrogates), no U+0000; this
//! server also refuses C0/C1 control characters and Unicode noncharacters (U+FFFE,
//! U+FFFF, U+FDD0–U+FDEF, …), which the spec lets a receiver close the connection for.
//! This module must never panic on input or allocate more than the bytes it was given.

use super::error::CodecError;
use super::header::put_variable;
use super::packet::PacketType;
use bytes::{BufMut, Bytes, BytesMut};

/// A cursor over one packet body.
pub struct Reader {
    data: Bytes,
    pos: usize,
    packet: PacketType,
}

impl Reader {
    pub fn new(data: Bytes, packet: PacketType) -> Reader {
        Reader {
            data,
            pos: 0,
            packet,
        }
    }

    pub fn packet(&self) -> PacketType {
        self.packet
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated {
                packet: self.packet,
                field,
            });
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A variable byte integer: at most 4 bytes, minimally encoded.
    pub fn variable(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let mut value = 0u32;
        for index in 0..4 {
            let byte = self.u8(field)?;
            value |= u32::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                if index > 0 && byte == 0 {
                    return Err(CodecError::BadVariableInteger { field });
                }
                return Ok(value);
            }
        }
        Err(CodecError::BadVariableInteger { field })
    }

    /// Two-byte length then that many bytes.
    pub fn binary(&mut self, field: &'static str) -> Result<Bytes, CodecError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A length-prefixed UTF-8 string, validated.
    pub fn string(&mut self, field: &'static str) -> Result<String, CodecError> {
        let raw = self.binary(field)?;
        let text = std::str::from_utf8(&raw).map_err(|_| CodecError::InvalidUtf8 { field })?;
        check_text(text, field)?;
        Ok(text.to_string())
    }

    /// A sub-reader over the next `len` bytes (a property block).
    pub fn sub(&mut self, len: usize, field: &'static str) -> Result<Reader, CodecError> {
        let data = self.take(len, field)?;
        Ok(Reader::new(data, self.packet))
    }

    /// Everything left (a payload).
    pub fn rest(&mut self) -> Bytes {
        let out = self.data.slice(self.pos..);
        self.pos = self.data.len();
        out
    }

    /// Fails if any byte is left over.
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(CodecError::TrailingBytes {
                packet: self.packet,
                extra,
            }),
        }
    }
}

/// Checks text for the characters MQTT strings must not (or should not) hold.
pub(crate) fn check_text(text: &str, field: &'static str) -> Result<(), CodecError> {
    if text.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(());
    }
    for (offset, ch) in text.char_indices() {
        if is_forbidden(ch) {
            return Err(CodecError::ForbiddenCharacter {
                field,
                code: u32::from(ch),
                offset,
            });
        }
    }
    Ok(())
}

fn is_forbidden(ch: char) -> bool {
    let code = u32::from(ch);
    let control = code <= 0x1F || (0x7F..=0x9F).contains(&code);
    let noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
    control || noncharacter
}

/// Appends a length-prefixed string (or binary) field.
pub(crate) fn put_binary(
    dst: &mut BytesMut,
    data: &[u8],
    field: &'static str,
) -> Result<(), CodecError> {
    let len = u16::try_from(data.len()).map_err(|_| CodecError::StringTooLong { field })?;
    dst.put_u16(len);
    dst.put_slice(data);
    Ok(())
}

pub(crate) fn put_string(
    dst: &mut BytesMut,
    text: &str,
    field: &'static str,
) -> Result<(), CodecError> {
    put_binary(dst, text.as_bytes(), field)
}

/// Appends a variable byte integer property value.
pub(crate) fn put_variable_u32(dst: &mut BytesMut, value: u32) {
    put_variable(dst, value as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_string(bytes: &[u8]) -> Result<String, CodecError> {
        Reader::new(Bytes::copy_from_slice(bytes), PacketType::Connect).string("test field")
    }

    #[test]
    fn accepts_plain_and_multilingual_text() {
        assert_eq!(read_string(b"\x00\x03abc").unwrap(), "abc");
        let text = "Grüße/温度";
        let mut buf = BytesMut::new();
        put_string(&mut buf, text, "t").unwrap();
        assert_eq!(read_string(&buf).unwrap(), text);
    }

    #[test]
    fn refuses_nul_controls_surrogates_and_noncharacters() {
        let cases: [&[u8]; 6] = [
            b"\x00\x03a\x00b",
            b"\x00\x02a\x01",
            b"\x00\x03\xED\xA0\x80",     // U+D800 encoded as UTF-8
            b"\x00\x03\xEF\xBF\xBF",     // U+FFFF
            b"\x00\x02\xC2\x85",         // U+0085 (C1 control)
            b"\x00\x04\xF0\x9F\xBF\xBE", // U+1FFFE
        ];
        for case in cases {
            assert!(read_string(case).is_err(), "{case:?} was accepted");
        }
    }

    #[test]
    fn truncated_string_names_the_field() {
        let err = read_string(b"\x00\x05ab").unwrap_err();
        assert_eq!(err.to_string(), "CONNECT ended inside test field");
    }

    #[test]
    fn variable_integers_are_minimal() {
        let mut r = Reader::new(Bytes::from_static(&[0x80, 0x00]), PacketType::Publish);
        assert!(r.variable("x").is_err());
        let mut r = Reader::new(Bytes::from_static(&[0x80, 0x01]), PacketType::Publish);
        assert_eq!(r.variable("x").unwrap(), 128);
    }
}
