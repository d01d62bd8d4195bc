//! Multi-part payloads: MQTT has no ordering guarantee across messages and
//! payloads are bounded, so a response that spans several messages stamps each with its
//! `seq` (1-based) and `total`; the receiver collects them in any order and knows when it
//! has all. This module must never do I/O.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Most parts one multi-part payload may announce.
pub const MAX_PARTS: u64 = 1000;

/// Stamps `items` as parts: `{"seq": i, "total": n, "part": item}`.
pub fn stamp(items: Vec<Value>) -> Vec<Value> {
    let total = items.len();
    items
        .into_iter()
        .enumerate()
        .map(|(i, part)| json!({"seq": i + 1, "total": total, "part": part}))
        .collect()
}

/// A part whose stamp cannot be accepted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PartError {
    /// `seq` and `total` are not integers with 1 <= seq <= total <= [`MAX_PARTS`].
    #[error("bad part stamp: seq {seq}, total {total} (1 <= seq <= total <= {MAX_PARTS})")]
    BadStamp {
        /// The `seq` value as sent.
        seq: Value,
        /// The `total` value as sent.
        total: Value,
    },
    /// A part announces another total than the parts before it.
    #[error("part {seq} says total {total}, earlier parts said {earlier}")]
    TotalChanged {
        /// The part's `seq`.
        seq: u64,
        /// The total it announces.
        total: u64,
        /// The total the earlier parts announced.
        earlier: u64,
    },
}

/// `Some((seq, total, part))` if `payload` is a stamped part.
pub fn parse(payload: &Value) -> Option<Result<(u64, u64, Value), PartError>> {
    let (seq, total) = (payload.get("seq")?, payload.get("total")?);
    let checked = match (seq.as_u64(), total.as_u64()) {
        (Some(s), Some(t)) if (1..=MAX_PARTS).contains(&t) && (1..=t).contains(&s) => {
            Ok((s, t, payload.get("part").cloned().unwrap_or(Value::Null)))
        }
        _ => Err(PartError::BadStamp {
            seq: seq.clone(),
            total: total.clone(),
        }),
    };
    Some(checked)
}

/// Parts collected so far for one request.
#[derive(Debug, Default)]
pub struct Assembly {
    total: u64,
    parts: BTreeMap<u64, Value>,
}

impl Assembly {
    /// Adds a part; returns every part in order once all have arrived.
    pub fn add(
        &mut self,
        seq: u64,
        total: u64,
        part: Value,
    ) -> Result<Option<Vec<Value>>, PartError> {
        if self.total != 0 && self.total != total {
            return Err(PartError::TotalChanged {
                seq,
                total,
                earlier: self.total,
            });
        }
        self.total = total;
        self.parts.insert(seq, part);
        if self.parts.len() as u64 == total {
            return Ok(Some(
                std::mem::take(&mut self.parts).into_values().collect(),
            ));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_reassemble_in_any_order() {
        let stamped = stamp(vec![json!("a"), json!("b"), json!("c")]);
        let mut assembly = Assembly::default();
        let mut done = None;
        for i in [2, 0, 1] {
            let (seq, total, part) = parse(&stamped[i]).unwrap().unwrap();
            done = assembly.add(seq, total, part).unwrap();
        }
        assert_eq!(done, Some(vec![json!("a"), json!("b"), json!("c")]));
        assert_eq!(
            parse(&json!({"seq": 0, "total": 2})),
            Some(Err(PartError::BadStamp {
                seq: json!(0),
                total: json!(2)
            }))
        );
        assert!(parse(&json!({"seq": 3, "total": 2})).unwrap().is_err());
        assert!(parse(&json!({"x": 1})).is_none());
        let mut mixed = Assembly::default();
        mixed.add(1, 2, json!(1)).unwrap();
        assert_eq!(
            mixed.add(2, 3, json!(2)),
            Err(PartError::TotalChanged {
                seq: 2,
                total: 3,
                earlier: 2
            })
        );
    }
}
