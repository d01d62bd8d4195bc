//! MQTT topic names and topic filters: their syntax, `$share/` splitting and filter
//! matching — the one topic grammar of the engine, the codec and the broker's router.
//!
//! Names (publish, receive, wills) contain no `+` or `#` (MQTT-3.3.2-2). Filters (subscribe,
//! unsubscribe) hold `+` only as a whole level and `#` only as the whole last level
//! (MQTT-4.7.1-1/-2). `$share/<group>/<filter>` needs a group without `+`, `#` or `/` and a
//! non-empty filter (MQTT-4.8.2-1/-2); `$queue/` (a non-standard shared form) is refused
//! everywhere, so the codec never hands the broker a filter a decision would refuse as
//! syntax. A bare `$share` or `$queue` (no `/`) is an ordinary filter.
//!
//! Two strengths of check: [`check_filter_syntax`] and [`check_name_syntax`] are what the
//! wire format requires (the codec; MQTT's own 65,535-byte cap is the string length
//! prefix); [`check_name`] and [`check_filter`] add the [`Bounds`] a decision applies and
//! judge sizes first, so a topic too large to consider is `TooLong`/`TooManyLevels`
//! whatever else is wrong with it. U+0000 is refused by both (the codec's UTF-8 reader
//! refuses it before this module sees the string).
//!
//! Costs: every function is one pass over the string. This module must never allocate
//! for an accepted topic, nor know about policies, sessions or connections.

use std::fmt;

/// Why a topic or filter is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TopicError {
    /// The topic or filter is the empty string.
    Empty,
    /// Longer than [`Bounds::max_bytes`].
    TooLong,
    /// More levels than [`Bounds::max_levels`].
    TooManyLevels,
    /// Contains U+0000.
    Nul,
    /// A topic name holds `+` or `#`.
    WildcardInName,
    /// A filter holds `+` or `#` inside a level, or `#` before its last level.
    MalformedWildcard,
    /// A `$share/` group name is empty or holds `+` or `#`.
    BadShareName,
    /// A `$share/<group>` has no filter after the group.
    EmptySharedFilter,
    /// A `$queue/` filter: not supported (use `$share/<group>/`).
    UnsupportedShare,
    /// A topic name starts with `$share/` or `$queue/`.
    SharePrefixInName,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "is empty",
            TopicError::TooLong => "is longer than the byte limit",
            TopicError::TooManyLevels => "has more levels than the limit",
            TopicError::Nul => "contains U+0000",
            TopicError::WildcardInName => {
                "contains a wildcard (`+` or `#`), which topic names may not"
            }
            TopicError::MalformedWildcard => {
                "uses `+` or `#` inside a level, or `#` before the last level"
            }
            TopicError::BadShareName => {
                "has a $share group name that is empty or contains `+`, `#` or `/`"
            }
            TopicError::EmptySharedFilter => "has a $share prefix with no filter after it",
            TopicError::UnsupportedShare => {
                "uses $queue/, which is not supported (use $share/<group>/)"
            }
            TopicError::SharePrefixInName => {
                "starts with $share/ or $queue/, which only subscription filters may"
            }
        })
    }
}

/// The size bounds a decision applies to a topic or filter (the policy's limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes in a topic or filter.
    pub max_bytes: usize,
    /// Levels (`/`-separated parts) in a topic or filter.
    pub max_levels: usize,
}

/// Checks a topic name for publish or receive: bounds first, then syntax; a name may not
/// start with `$share/` or `$queue/`.
pub fn check_name(topic: &str, bounds: Bounds) -> Result<(), TopicError> {
    let scan = Scan::of(topic, bounds)?;
    scan.sizes(bounds)?; // levels and U+0000: what is left is wildcards
    if scan.flags & WILD != 0 {
        return Err(TopicError::WildcardInName);
    }
    if topic.starts_with("$share/") || topic.starts_with("$queue/") {
        return Err(TopicError::SharePrefixInName);
    }
    Ok(())
}

/// Checks a subscription filter that is already split from its `$share/` prefix (see
/// [`split_shared`]): bounds first, then wildcards.
pub fn check_filter(filter: &str, bounds: Bounds) -> Result<(), TopicError> {
    check_filter_wildcards(filter, bounds).map(|_| ())
}

/// [`check_filter`], saying whether the filter holds a wildcard (`+` or `#`) at all: one
/// without selects exactly one topic, its own text.
pub fn check_filter_wildcards(filter: &str, bounds: Bounds) -> Result<bool, TopicError> {
    let scan = Scan::of(filter, bounds)?;
    scan.sizes(bounds)?;
    if scan.malformed {
        return Err(TopicError::MalformedWildcard);
    }
    Ok(scan.flags & WILD != 0)
}

/// The wire syntax of a PUBLISH or will topic name; `allow_empty` when a 5.0 topic alias
/// stands in for it.
pub fn check_name_syntax(topic: &str, allow_empty: bool) -> Result<(), TopicError> {
    if topic.is_empty() && !allow_empty {
        return Err(TopicError::Empty);
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// The wire syntax of a SUBSCRIBE or UNSUBSCRIBE filter, `$share/` form included: exactly
/// the filters a decision does not refuse as syntax.
pub fn check_filter_syntax(filter: &str) -> Result<(), TopicError> {
    let (_, inner) = split_shared(filter)?;
    let unbounded = Bounds {
        max_bytes: usize::MAX,
        max_levels: usize::MAX,
    };
    let scan = Scan::of(inner, unbounded)?; // empty
    scan.sizes(unbounded)?; // U+0000
    if scan.malformed {
        return Err(TopicError::MalformedWildcard);
    }
    Ok(())
}

/// A byte's class for [`Scan`]: a level separator, U+0000, or a wildcard.
const SLASH: u8 = 1;
const NUL: u8 = 2;
const WILD: u8 = 4;

const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    class[b'/' as usize] = SLASH;
    class[0] = NUL;
    class[b'+' as usize] = WILD;
    class[b'#' as usize] = WILD;
    class
};

/// What one pass over a topic or filter found: its level count, the classes of bytes it
/// holds, and whether a wildcard is not a whole level (or `#` not the last one).
struct Scan {
    levels: usize,
    flags: u8,
    malformed: bool,
}

impl Scan {
    /// Scans `topic` once, after refusing an empty or too long one (sizes come first):
    /// eight bytes at a time (one mask each of `/`, wildcards and U+0000 per word; a
    /// wildcard, rare, is then judged from its neighbours), the bytes after the last whole
    /// word one at a time.
    #[inline]
    fn of(topic: &str, bounds: Bounds) -> Result<Scan, TopicError> {
        if topic.is_empty() {
            return Err(TopicError::Empty);
        }
        if topic.len() > bounds.max_bytes {
            return Err(TopicError::TooLong);
        }
        let bytes = topic.as_bytes();
        let (mut levels, mut flags, mut malformed) = (1usize, 0u8, false);
        let mut words = bytes.chunks_exact(8);
        let mut at = 0;
        for word in words.by_ref() {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            let slashes = zero_bytes(word ^ repeat(b'/'));
            let mut wilds = wildcard_bytes(word);
            levels += bytes_set(slashes);
            flags |= (u8::from(zero_bytes(word) != 0) * NUL) | (u8::from(wilds != 0) * WILD);
            while wilds != 0 {
                malformed |= !wildcard_alone(bytes, at + wilds.trailing_zeros() as usize / 8);
                wilds &= wilds - 1;
            }
            at += 8;
        }
        for (i, &b) in words.remainder().iter().enumerate() {
            let class = CLASS[b as usize];
            flags |= class;
            levels += usize::from(class & SLASH != 0);
            if class & WILD != 0 {
                malformed |= !wildcard_alone(bytes, at + i);
            }
        }
        Ok(Scan {
            levels,
            flags,
            malformed,
        })
    }

    /// The level bound, then U+0000.
    #[inline]
    fn sizes(&self, bounds: Bounds) -> Result<(), TopicError> {
        if self.levels > bounds.max_levels {
            return Err(TopicError::TooManyLevels);
        }
        if self.flags & NUL != 0 {
            return Err(TopicError::Nul);
        }
        Ok(())
    }
}

/// Whether the wildcard at byte `i` is a whole level (`/` or the text's edge on both
/// sides), and, for `#`, the last one.
#[inline]
fn wildcard_alone(bytes: &[u8], i: usize) -> bool {
    let starts = i == 0 || bytes.get(i - 1) == Some(&b'/');
    let last = i + 1 == bytes.len();
    let ends = last || bytes.get(i + 1) == Some(&b'/');
    starts && ends && (bytes.get(i) != Some(&b'#') || last)
}

/// The `/`-separated levels of a topic or filter, like `topic.split('/')`, for the decision
/// hot path: topic levels are a few bytes long, and a plain byte loop finds the next `/`
/// in fewer instructions than the general substring search.
#[inline]
pub fn levels(topic: &str) -> Levels<'_> {
    Levels { rest: Some(topic) }
}

/// The levels of a (valid) filter before its trailing `#`, and whether it has one: `a/+/#`
/// gives `a`, `+` and true; `#` no level and true; `a/+` both levels and false. The
/// subscribe loops take the levels one way and the `#` another, without comparing every
/// level with `#`.
#[inline]
pub fn levels_before_hash(filter: &str) -> (Levels<'_>, bool) {
    if filter.as_bytes().last() != Some(&b'#') {
        return (levels(filter), false);
    }
    // A valid filter's `#` is its whole last level: `/` comes before it, unless it is the
    // whole filter. (Both are one byte, so the cut falls on a character boundary.)
    let body = filter
        .len()
        .checked_sub(2)
        .and_then(|end| filter.get(..end));
    (Levels { rest: body }, true)
}

/// The iterator of [`levels`].
#[derive(Clone, Debug)]
pub struct Levels<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Levels<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(at) => {
                // `/` is one byte, so both cuts fall on character boundaries.
                self.rest = rest.get(at + 1..);
                rest.get(..at)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// A topic name's levels, checked while they are split: the decision hot path walks each
/// level as it is cut and never passes over the bytes twice. Sizes are judged up front
/// where they can be (empty, too long); the rest, in [`check_name`]'s order, by
/// [`NameLevels::finish`], which reads whatever levels were not taken and gives exactly
/// [`check_name`]'s answer. Nothing taken from the iterator may be acted on before
/// `finish` says the name is valid.
pub fn name_levels(topic: &str, bounds: Bounds) -> Result<NameLevels<'_>, TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > bounds.max_bytes {
        return Err(TopicError::TooLong);
    }
    Ok(NameLevels {
        topic,
        at: 0,
        done: false,
        levels: 0,
        flags: 0,
    })
}

/// The iterator of [`name_levels`].
#[derive(Clone, Debug)]
pub struct NameLevels<'a> {
    topic: &'a str,
    /// Where the next level starts.
    at: usize,
    done: bool,
    /// Levels cut so far.
    levels: usize,
    /// The byte classes ([`CLASS`]) met so far.
    flags: u8,
}

impl<'a> Iterator for NameLevels<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let bytes = self.topic.as_bytes();
        let start = self.at;
        let mut i = start;
        // Eight bytes at a time while eight are left: which are `/`, and whether any is
        // U+0000, `+` or `#` (bytes past the level's end belong to the topic too, so
        // noting them early changes nothing).
        let mut end = None;
        while let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            self.flags |= word_flags(word);
            let slashes = zero_bytes(word ^ repeat(b'/'));
            if slashes != 0 {
                end = Some(i + slashes.trailing_zeros() as usize / 8);
                break;
            }
            i += 8;
        }
        let end = end.unwrap_or_else(|| {
            // Fewer than eight bytes left: one at a time.
            let mut flags = self.flags;
            while let Some(&b) = bytes.get(i) {
                let class = CLASS[b as usize];
                flags |= class;
                if class & SLASH != 0 {
                    break;
                }
                i += 1;
            }
            self.flags = flags;
            i
        });
        self.levels += 1;
        self.done = end == bytes.len();
        self.at = end + 1;
        // `/` is one byte, so both cuts fall on character boundaries.
        self.topic.get(start..end)
    }
}

impl NameLevels<'_> {
    /// Takes in the levels not yet cut without cutting them: the `/`s left, and the classes
    /// of the bytes left.
    fn count_rest(&mut self) {
        let rest = self.topic.as_bytes().get(self.at..).unwrap_or_default();
        let mut words = rest.chunks_exact(8);
        let mut slashes = 0;
        for word in words.by_ref() {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            self.flags |= word_flags(word);
            slashes += zero_bytes(word ^ repeat(b'/')).count_ones() as usize;
        }
        for &b in words.remainder() {
            let class = CLASS[b as usize];
            self.flags |= class;
            slashes += usize::from(class & SLASH != 0);
        }
        // The rest is one level, plus one more after each `/` in it.
        self.levels += slashes + 1;
        self.done = true;
    }
}

/// `byte` in every byte of a word.
const fn repeat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of every byte of `word` that is zero, and no other bit (exact: the sum
/// below never carries from one byte into the next).
#[inline]
const fn zero_bytes(word: u64) -> u64 {
    let low7 = repeat(0x7F);
    !(((word & low7).wrapping_add(low7)) | word | low7)
}

/// The high bit of every byte of `word` that is `+` (0x2B) or `#` (0x23), and no other
/// bit: the two differ only in bit 3, so setting it in every byte leaves one value to find.
#[inline]
const fn wildcard_bytes(word: u64) -> u64 {
    zero_bytes((word | repeat(0x08)) ^ repeat(b'+'))
}

/// How many bytes a [`zero_bytes`] mask marks: one bit per byte moved to the byte's low
/// bit, then summed into the top byte by one multiplication (at most eight: no carry).
#[inline]
const fn bytes_set(mask: u64) -> usize {
    ((mask >> 7).wrapping_mul(repeat(1)) >> 56) as usize
}

/// The [`CLASS`] flags of U+0000 and the wildcards found among a word's bytes.
#[inline]
const fn word_flags(word: u64) -> u8 {
    let nul = zero_bytes(word) != 0;
    let wild = wildcard_bytes(word) != 0;
    (nul as u8 * NUL) | (wild as u8 * WILD)
}

impl NameLevels<'_> {
    /// [`check_name`]'s answer for the whole name (reading the levels not yet taken, in
    /// one pass: a walk that stopped early leaves only the counting to do).
    pub fn finish(mut self, bounds: Bounds) -> Result<(), TopicError> {
        if !self.done {
            self.count_rest();
        }
        if self.levels > bounds.max_levels {
            return Err(TopicError::TooManyLevels);
        }
        if self.flags & NUL != 0 {
            return Err(TopicError::Nul);
        }
        if self.flags & WILD != 0 {
            return Err(TopicError::WildcardInName);
        }
        if self.topic.starts_with("$share/") || self.topic.starts_with("$queue/") {
            return Err(TopicError::SharePrefixInName);
        }
        Ok(())
    }
}

/// Splits `$share/<group>/<filter>` into the group and the filter; other filters pass
/// through with no group. `$queue/` filters and malformed `$share/` prefixes are errors.
pub fn split_shared(filter: &str) -> Result<(Option<&str>, &str), TopicError> {
    if filter.starts_with("$queue/") {
        return Err(TopicError::UnsupportedShare);
    }
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(TopicError::EmptySharedFilter);
    };
    if group.is_empty() || group.contains(['+', '#']) {
        return Err(TopicError::BadShareName);
    }
    if inner.is_empty() {
        return Err(TopicError::EmptySharedFilter);
    }
    Ok((Some(group), inner))
}

/// True for a `$share/` filter.
pub fn is_shared(filter: &str) -> bool {
    filter.starts_with("$share/")
}

/// Whether `filter` (without `$share/`) matches `topic`, with the `$` rule: a filter that
/// starts with a wildcard never matches a topic that starts with `$` (MQTT-4.7.2-1).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    let mut first = true;
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return !(first && topic.starts_with('$')),
            (Some("+"), Some(_)) if first && topic.starts_with('$') => return false,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that exercise every error of [`check_name`] and every level shape.
    const NAMES: &[&str] = &[
        "",
        "a",
        "/",
        "//",
        "a/b",
        "/a",
        "a/",
        "a//b",
        "$SYS/x",
        "$share/g/t",
        "$queue/q/t",
        "$share",
        "a/+",
        "a/#",
        "+",
        "#",
        "a+b",
        "a\0b",
        "\0",
        "é/ü",
        "a/b/c/d/e/f",
        "a/b/c/d/e/f/g",
        "abcdefghijklmnopqrstuvwxyz",
        "a/\0/+",
    ];

    #[test]
    fn name_levels_cut_like_levels_and_finish_like_check_name() {
        for bounds in [
            BOUNDS,
            Bounds {
                max_bytes: 8,
                max_levels: 3,
            },
        ] {
            for &name in NAMES {
                let fused = name_levels(name, bounds).and_then(|levels| {
                    let cut: Vec<&str> = levels.clone().collect();
                    assert_eq!(cut, levels_of(name), "{name:?}");
                    // Taking only some levels first changes nothing.
                    let mut partly = levels.clone();
                    partly.next();
                    assert_eq!(
                        partly.finish(bounds),
                        levels.clone().finish(bounds),
                        "{name:?}"
                    );
                    levels.finish(bounds)
                });
                assert_eq!(
                    fused,
                    check_name(name, bounds),
                    "{name:?} within {bounds:?}"
                );
            }
        }
    }

    fn levels_of(name: &str) -> Vec<&str> {
        levels(name).collect()
    }

    /// Eight bytes at a time must find every `/`, U+0000 and wildcard wherever it falls
    /// in a word, and in the bytes left after the last whole word.
    #[test]
    fn name_levels_agree_on_random_names() {
        const PARTS: &[&str] = &["a", "b", "/", "+", "#", "\0", "é", "$", "xyzxyzxyz"];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let bounds = Bounds {
            max_bytes: 40,
            max_levels: 6,
        };
        for _ in 0..20_000 {
            let name: String = (0..next(24)).map(|_| PARTS[next(PARTS.len())]).collect();
            let fused = name_levels(&name, bounds).and_then(|levels| {
                let cut: Vec<&str> = levels.clone().collect();
                assert_eq!(cut, levels_of(&name), "{name:?}");
                // A walk stops after any number of levels; finishing must not care.
                let mut partly = levels.clone();
                for _ in 0..next(4) {
                    partly.next();
                }
                assert_eq!(
                    partly.finish(bounds),
                    levels.clone().finish(bounds),
                    "{name:?}"
                );
                levels.finish(bounds)
            });
            assert_eq!(fused, check_name(&name, bounds), "{name:?}");
        }
    }

    const BOUNDS: Bounds = Bounds {
        max_bytes: 65_535,
        max_levels: 128,
    };

    #[test]
    fn bounded_filters_and_names() {
        assert!(check_filter("a/+/#", BOUNDS).is_ok());
        assert!(check_filter("#", BOUNDS).is_ok());
        for bad in ["a/#/b", "a/b#", "a/+x", "#/"] {
            assert_eq!(
                check_filter(bad, BOUNDS),
                Err(TopicError::MalformedWildcard),
                "{bad}"
            );
        }
        assert_eq!(check_name("a/+", BOUNDS), Err(TopicError::WildcardInName));
        assert_eq!(check_name("", BOUNDS), Err(TopicError::Empty));
        assert_eq!(check_name("a\0", BOUNDS), Err(TopicError::Nul));
        assert_eq!(
            check_name("$share/g/a", BOUNDS),
            Err(TopicError::SharePrefixInName)
        );
        assert_eq!(
            check_name(&"/".repeat(200), BOUNDS),
            Err(TopicError::TooManyLevels)
        );
        // Sizes are judged first.
        let long_and_wild = format!("{}+", "a".repeat(70_000));
        assert_eq!(check_name(&long_and_wild, BOUNDS), Err(TopicError::TooLong));
    }

    /// The one-pass scan agrees with the plain definitions (split into levels, then judge
    /// each) on every short string over the bytes that matter.
    #[test]
    fn one_pass_agrees_with_the_definitions() {
        fn by_definition(text: &str, name: bool, bounds: Bounds) -> Result<(), TopicError> {
            let levels: Vec<&str> = text.split('/').collect();
            if text.is_empty() {
                return Err(TopicError::Empty);
            }
            if text.len() > bounds.max_bytes {
                return Err(TopicError::TooLong);
            }
            if levels.len() > bounds.max_levels {
                return Err(TopicError::TooManyLevels);
            }
            if text.contains('\0') {
                return Err(TopicError::Nul);
            }
            if name {
                if text.contains(['+', '#']) {
                    return Err(TopicError::WildcardInName);
                }
                if text.starts_with("$share/") || text.starts_with("$queue/") {
                    return Err(TopicError::SharePrefixInName);
                }
                return Ok(());
            }
            let last = levels.len() - 1;
            for (i, level) in levels.iter().enumerate() {
                let whole = *level == "+" || (*level == "#" && i == last);
                if level.contains(['+', '#']) && !whole {
                    return Err(TopicError::MalformedWildcard);
                }
            }
            Ok(())
        }
        let alphabet = ["a", "/", "+", "#", "\0", "$"];
        let bounds = Bounds {
            max_bytes: 5,
            max_levels: 3,
        };
        let mut texts = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(frontier.iter().cloned());
        }
        texts.extend(["$share/g/a", "$queue/a", "$share"].map(String::from));
        // Longer texts, read eight bytes at a time: every byte that matters at every
        // position of a word and after the last whole one, next to multi-byte characters.
        const PARTS: &[&str] = &[
            "a", "/", "+", "#", "\0", "$", "é", "😀", "abcdefgh", "+/", "/#", "€/",
        ];
        let mut state = 0xD1B5_4A32_D192_ED03u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..30_000 {
            texts.push((0..next(30)).map(|_| PARTS[next(PARTS.len())]).collect());
        }
        for text in &texts {
            for (wide, b) in [(false, bounds), (true, BOUNDS)] {
                assert_eq!(
                    check_name(text, b),
                    by_definition(text, true, b),
                    "name {text:?} wide={wide}"
                );
                assert_eq!(
                    check_filter(text, b),
                    by_definition(text, false, b),
                    "filter {text:?} wide={wide}"
                );
            }
        }
    }

    /// The word masks mark exactly the bytes they name, whatever their neighbours are
    /// (every pair of byte values, at every position of a word).
    #[test]
    fn word_masks_mark_exactly_their_bytes() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for at in 0..7 {
                    let mut bytes = [b'x'; 8];
                    bytes[at] = a;
                    bytes[at + 1] = b;
                    let word = u64::from_le_bytes(bytes);
                    let want = |of: &dyn Fn(u8) -> bool| {
                        bytes
                            .iter()
                            .enumerate()
                            .filter(|&(_, &c)| of(c))
                            .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i))
                    };
                    assert_eq!(wildcard_bytes(word), want(&|c| c == b'+' || c == b'#'));
                    assert_eq!(zero_bytes(word ^ repeat(b'/')), want(&|c| c == b'/'));
                    assert_eq!(zero_bytes(word), want(&|c| c == 0));
                    let slashes = zero_bytes(word ^ repeat(b'/'));
                    assert_eq!(bytes_set(slashes), slashes.count_ones() as usize);
                }
            }
        }
    }

    #[test]
    fn levels_before_a_trailing_hash() {
        for (filter, want, hash) in [
            ("#", &[][..], true),
            ("/#", &[""][..], true),
            ("a/+/#", &["a", "+"][..], true),
            ("a//#", &["a", ""][..], true),
            ("a/+", &["a", "+"][..], false),
            ("+", &["+"][..], false),
            ("/", &["", ""][..], false),
        ] {
            let (levels, trailing) = levels_before_hash(filter);
            assert_eq!(levels.collect::<Vec<_>>(), want, "{filter:?}");
            assert_eq!(trailing, hash, "{filter:?}");
        }
    }

    #[test]
    fn levels_are_the_split_at_slashes() {
        for text in ["", "/", "a", "a/b", "/a/", "a//b", "ü/€/x", "$SYS/#"] {
            let want: Vec<&str> = text.split('/').collect();
            assert_eq!(levels(text).collect::<Vec<_>>(), want, "{text:?}");
        }
    }

    #[test]
    fn shared_subscriptions() {
        assert_eq!(split_shared("$share/g/a/b"), Ok((Some("g"), "a/b")));
        assert_eq!(split_shared("a/b"), Ok((None, "a/b")));
        assert_eq!(split_shared("$share"), Ok((None, "$share")));
        assert_eq!(
            split_shared("$share/g/"),
            Err(TopicError::EmptySharedFilter)
        );
        assert_eq!(split_shared("$share/g"), Err(TopicError::EmptySharedFilter));
        assert_eq!(split_shared("$share//a"), Err(TopicError::BadShareName));
        assert_eq!(split_shared("$share/g+/a"), Err(TopicError::BadShareName));
        assert_eq!(split_shared("$queue/a"), Err(TopicError::UnsupportedShare));
    }

    #[test]
    fn wire_names() {
        assert!(check_name_syntax("a/b", false).is_ok());
        assert!(check_name_syntax("", true).is_ok());
        assert!(check_name_syntax("", false).is_err());
        assert!(check_name_syntax("a/+", false).is_err());
        assert!(check_name_syntax("a#", false).is_err());
    }

    #[test]
    fn wire_filters() {
        for ok in [
            "#",
            "+",
            "a/+/b",
            "a/#",
            "/",
            "+/+",
            "$share/g/a/#",
            "$SYS/#",
            "$share",
            "$queue",
        ] {
            assert!(check_filter_syntax(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/#/b",
            "a+",
            "a/b#",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/g",
            "$queue/a",
            "$queue/g/a",
        ] {
            assert!(check_filter_syntax(bad).is_err(), "{bad}");
        }
    }

    /// The wire check refuses exactly the filters a decision refuses as syntax: for every
    /// filter within the bounds, `check_filter_syntax` fails iff splitting or the bounded
    /// check does.
    #[test]
    fn wire_and_decision_agree_on_filter_syntax() {
        let parts = [
            "", "a", "+", "#", "$share", "$queue", "g", "a+", "#b", "$SYS",
        ];
        let mut filters = Vec::new();
        for a in parts {
            for b in parts {
                for c in parts {
                    filters.push(format!("{a}/{b}/{c}"));
                    filters.push(format!("{a}/{b}"));
                }
                filters.push(a.to_string());
            }
        }
        for filter in &filters {
            let wire = check_filter_syntax(filter).is_ok();
            let decision = split_shared(filter)
                .and_then(|(_, inner)| check_filter(inner, BOUNDS))
                .is_ok();
            assert_eq!(wire, decision, "{filter:?}");
        }
    }

    #[test]
    fn matching_keeps_dollar_topics_from_leading_wildcards() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(!matches("a/b", "a/b/c"));
    }
}
