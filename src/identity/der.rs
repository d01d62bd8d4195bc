//! A minimal DER reader and writer for the few structures no maintained crate covers here.
//!
//! The reader serves [`super::ocsp`] (OCSP responses); the writer builds the subjectAltName
//! DirName that `rcgen` cannot express, for `topicguard dev pki` and for test PKIs. Only the
//! strict DER subset is read: single-byte tags, definite minimal lengths, no trailing data
//! where a caller asks for none. The reader never reads past its input and never panics.

/// Why DER could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    /// The input ends inside an element.
    #[error("input ends inside an element")]
    Truncated,
    /// The element's tag is not the one expected.
    #[error("expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        /// The tag expected.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// A DER feature this reader does not support.
    #[error("unsupported DER: {0}")]
    Unsupported(&'static str),
    /// Bytes follow the element.
    #[error("trailing data after an element")]
    TrailingData,
}

/// One element: its tag, its content and its whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    pub(crate) raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over this element's content.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.content)
    }
}

/// Reads consecutive elements.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next tag, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads the next element, whatever its tag.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let (&tag, rest) = self.data.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::Unsupported("multi-byte tag"));
        }
        let (&first, rest) = rest.split_first().ok_or(DerError::Truncated)?;
        let (len, rest) = match first {
            n if n < 0x80 => (usize::from(n), rest),
            0x80 => return Err(DerError::Unsupported("indefinite length")),
            n => read_long_length(usize::from(n & 0x7f), rest)?,
        };
        if rest.len() < len {
            return Err(DerError::Truncated);
        }
        let header = self.data.len() - rest.len();
        let raw = &self.data[..header + len];
        let content = &rest[..len];
        self.data = &rest[len..];
        Ok(Tlv { tag, content, raw })
    }

    /// Reads the next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(DerError::UnexpectedTag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }

    /// Reads the next element if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

fn read_long_length(count: usize, rest: &[u8]) -> Result<(usize, &[u8]), DerError> {
    if count == 0 || count > 4 {
        return Err(DerError::Unsupported("length of more than 4 bytes"));
    }
    if rest.len() < count {
        return Err(DerError::Truncated);
    }
    let (bytes, rest) = rest.split_at(count);
    if bytes[0] == 0 {
        return Err(DerError::Unsupported("non-minimal length"));
    }
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if len < 0x80 {
        return Err(DerError::Unsupported("non-minimal length"));
    }
    Ok((len, rest))
}

/// Tags used by the structures read and written here.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    pub(crate) const OID: u8 = 0x06;
    /// ENUMERATED.
    pub const ENUMERATED: u8 = 0x0a;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString.
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// IA5String.
    pub const IA5_STRING: u8 = 0x16;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// BMPString.
    pub const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE.
    pub const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;

    /// `[n]` constructed (EXPLICIT, or IMPLICIT of a constructed type).
    pub const fn context(n: u8) -> u8 {
        0xa0 | n
    }

    /// `[n]` primitive (IMPLICIT of a primitive type).
    pub const fn context_primitive(n: u8) -> u8 {
        0x80 | n
    }
}

/// Encodes one element.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a constructed element from already encoded parts.
pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// Encodes an OID from its arcs (the first two must be valid X.660 arcs).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    if let [first, second, rest @ ..] = arcs {
        push_base128(&mut content, first * 40 + second);
        for arc in rest {
            push_base128(&mut content, *arc);
        }
    }
    tlv(tag::OID, &content)
}

fn push_base128(out: &mut Vec<u8>, mut value: u64) {
    let mut groups = vec![(value & 0x7f) as u8];
    value >>= 7;
    while value > 0 {
        groups.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.extend(groups.into_iter().rev());
}

/// One name attribute: OID arcs, the string's tag, the string's bytes.
pub type NameAttribute<'a> = (&'a [u64], u8, &'a [u8]);

/// A distinguished name from RDNs, each a list of attributes.
pub fn name(rdns: &[&[NameAttribute<'_>]]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = rdns
        .iter()
        .map(|rdn| {
            let attrs: Vec<Vec<u8>> = rdn
                .iter()
                .map(|(arcs, string_tag, value)| {
                    constructed(tag::SEQUENCE, &[&oid(arcs), &tlv(*string_tag, value)])
                })
                .collect();
            let parts: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
            constructed(tag::SET, &parts)
        })
        .collect();
    let parts: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    constructed(tag::SEQUENCE, &parts)
}

/// OID arcs of the name attributes certificates here use.
pub mod arcs {
    /// commonName.
    pub const CN: &[u64] = &[2, 5, 4, 3];
    /// serialNumber (the subject attribute).
    pub const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
    /// organizationName.
    pub const O: &[u64] = &[2, 5, 4, 10];
    /// organizationalUnitName.
    pub const OU: &[u64] = &[2, 5, 4, 11];
    /// userId.
    pub const UID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];
    /// The subjectAltName extension.
    pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_long_lengths() {
        let content = vec![7u8; 300];
        let encoded = tlv(tag::OCTET_STRING, &content);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut reader = Reader::new(&encoded);
        let read = reader.expect(tag::OCTET_STRING).unwrap();
        assert_eq!(read.content, content.as_slice());
        assert_eq!(read.raw, encoded.as_slice());
        reader.finish().unwrap();
    }

    #[test]
    fn refuses_non_der_and_truncation() {
        assert_eq!(
            Reader::new(&[0x30, 0x80]).read(),
            Err(DerError::Unsupported("indefinite length"))
        );
        assert_eq!(
            Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).read(),
            Err(DerError::Unsupported("non-minimal length"))
        );
        assert_eq!(
            Reader::new(&[0x04, 0x05, 1]).read(),
            Err(DerError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0x00]).read(),
            Err(DerError::Unsupported("multi-byte tag"))
        );
        assert_eq!(Reader::new(&[]).read(), Err(DerError::Truncated));
    }

    #[test]
    fn encodes_the_uid_oid() {
        assert_eq!(
            oid(arcs::UID),
            [
                0x06, 0x0a, 0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01
            ]
        );
    }
}
