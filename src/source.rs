//! Policy source text and positions in it.
//!
//! A [`Source`] is one policy file: its name and its text. A [`Span`] is a byte range in
//! it; [`Source::loc`] turns an offset into a human `file:line:col` [`Loc`]. Every AST
//! node carries a span, so every diagnostic and every decision can point at the line
//! that caused it. This module never reads anything but the file it is asked to read.

use std::fmt;
use std::sync::Arc;

/// A byte range `[start, end)` in a [`Source`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The span of `len` bytes starting `offset` bytes into this one.
    pub fn sub(self, offset: usize, len: usize) -> Span {
        let start = (self.start + offset).min(self.end);
        Span::new(start, (start + len).min(self.end.max(start)))
    }

    pub(crate) fn len(self) -> usize {
        self.end - self.start
    }

    /// True when the span covers nothing.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> miette::SourceSpan {
        (span.start, span.len()).into()
    }
}

/// A human position: file name, 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Loc {
    pub(crate) file: Arc<str>,
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub col: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// The 1-based line and column (in characters) of byte `offset`, counting only the valid
/// UTF-8 prefix `bytes[..offset]` (the first bad byte is where the prefix stops).
pub fn utf8_line_col(bytes: &[u8], offset: usize) -> (u32, u32) {
    let prefix = &bytes[..offset.min(bytes.len())];
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = std::str::from_utf8(&prefix[line_start..]).map_or(0, |s| s.chars().count()) + 1;
    (line as u32, col as u32)
}

/// One policy file: its display name and its full text.
#[derive(Clone, Debug)]
pub struct Source {
    name: Arc<str>,
    text: Arc<str>,
    line_starts: Arc<[usize]>,
}

/// Reading a policy file failed before parsing could start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// The file cannot be read.
    #[error("cannot read policy file `{path}`: {cause}")]
    #[diagnostic(code(topicguard::source::io))]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error(
        "{path}:{line}:{col}: policy file is not valid UTF-8: byte 0x{byte:02X} (offset {offset}) \
         does not start a UTF-8 character"
    )]
    #[diagnostic(
        code(topicguard::source::utf8),
        help("policy files are UTF-8 text; re-save the file as UTF-8")
    )]
    NotUtf8 {
        /// The file.
        path: String,
        /// The byte offset of the first bad byte.
        offset: usize,
        /// Its 1-based line.
        line: u32,
        /// Its 1-based column, in characters (the bad byte counts as one).
        col: u32,
        /// The bad byte itself.
        byte: u8,
    },
}

impl Source {
    /// A source from text already in memory.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Source {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name: name.into(),
            text,
            line_starts: line_starts.into(),
        }
    }

    /// Reads a file; bytes that are not UTF-8 are an error naming the offset.
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<Source, SourceError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|cause| SourceError::Io {
            path: shown.clone(),
            cause,
        })?;
        Source::from_bytes(shown, bytes)
    }

    /// A source from raw bytes, which must be UTF-8.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Source, SourceError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source::new(name, text)),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let (line, col) = utf8_line_col(&bytes, offset);
                Err(SourceError::NotUtf8 {
                    path: name,
                    offset,
                    line,
                    col,
                    byte: bytes.get(offset).copied().unwrap_or(0),
                })
            }
        }
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name, shared.
    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, shared.
    pub fn text_arc(&self) -> Arc<str> {
        self.text.clone()
    }

    /// The text a span covers (empty if the span is out of range).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// The `file:line:col` of a byte offset.
    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Loc {
            file: self.name.clone(),
            line: line as u32,
            col: col as u32,
        }
    }

    /// A miette source for rendering diagnostics with a caret snippet.
    pub fn named_source(&self) -> miette::NamedSource<String> {
        miette::NamedSource::new(&*self.name, self.text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_counts_lines_and_characters() {
        let src = Source::new("p", "ab\néc\n");
        assert_eq!(src.loc(0).to_string(), "p:1:1");
        assert_eq!(src.loc(3).to_string(), "p:2:1");
        assert_eq!(src.loc(5).to_string(), "p:2:2");
    }

    #[test]
    fn non_utf8_names_the_line_and_column_of_the_first_bad_byte() {
        let text = b"allow any connect\n# caf\xc3\xa9 ok\nallow any publish \"a\xff\"\n".to_vec();
        let err = Source::from_bytes("u.policy".into(), text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("u.policy:3:21: "), "{shown}");
        assert!(shown.contains("0xFF"), "{shown}");
        let err = Source::from_bytes("p".into(), vec![0xC3]).unwrap_err();
        assert!(err.to_string().starts_with("p:1:1: "), "{err}");
    }

    #[test]
    fn non_utf8_names_the_offset() {
        let err = Source::from_bytes("p".into(), vec![b'a', 0xff]).unwrap_err();
        assert!(err.to_string().contains("offset 1"), "{err}");
    }
}
