//! A stable, indented text form of an [`Automaton`] for snapshot tests and `--dump`.
//!
//! Edges print in a fixed order (literals sorted, then sets, slots, patterns, `+`), so the
//! same policy always dumps the same text.

use super::*;
use crate::check::Checked;
use std::fmt::Write as _;

impl Automaton {
    /// The dump, with identity names taken from the policy.
    pub fn dump(&self, checked: &Checked) -> String {
        let mut out = String::new();
        for (i, root) in self.roots.iter().enumerate() {
            let name = checked.identities.get(i).map_or("?", |d| d.name.as_str());
            let _ = writeln!(out, "identity {name}");
            for a in &self.connect[i] {
                let _ = writeln!(out, "  connect: {} #{}", a.effect, a.rule.0);
            }
            self.dump_node(&mut out, *root, 1, i);
        }
        let _ = writeln!(out, "{} nodes, {} rules", self.nodes.len(), self.rule_count);
        out
    }

    fn dump_node(&self, out: &mut String, id: NodeId, depth: usize, identity: usize) {
        let node = self.node(id);
        let pad = "  ".repeat(depth);
        for (kind, accepts) in [("=", node.exact()), ("#", node.hash())] {
            for a in accepts {
                let actions: Vec<&str> = a.actions.iter().map(|x| x.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{pad}{kind} {} #{} {}",
                    a.effect,
                    a.rule.0,
                    actions.join(",")
                );
            }
        }
        for (text, child) in node.literal().sorted() {
            let _ = writeln!(out, "{pad}{text:?}");
            self.dump_node(out, child, depth + 1, identity);
        }
        let guarded = node.guarded();
        for (set, child) in guarded.iter().filter_map(|&(g, c)| match g {
            Guard::OneOf(set) => Some((set, c)),
            _ => None,
        }) {
            let mut values: Vec<&str> = self.sets[set.0 as usize].iter().collect();
            values.sort_unstable();
            let _ = writeln!(out, "{pad}{{{}}}", values.join("|"));
            self.dump_node(out, child, depth + 1, identity);
        }
        for (slot, child) in guarded.iter().filter_map(|&(g, c)| match g {
            Guard::Slot(slot) => Some((slot, c)),
            _ => None,
        }) {
            let _ = writeln!(out, "{pad}slot {}", self.slots[identity][slot.0 as usize]);
            self.dump_node(out, child, depth + 1, identity);
        }
        for (pattern, child) in guarded.iter().filter_map(|&(g, c)| match g {
            Guard::Pattern(pattern) => Some((pattern, c)),
            _ => None,
        }) {
            let _ = writeln!(
                out,
                "{pad}pattern {}",
                pieces_text(&self.patterns[pattern.0 as usize].pieces)
            );
            self.dump_node(out, child, depth + 1, identity);
        }
        if let Some(child) = node.any() {
            let _ = writeln!(out, "{pad}+");
            self.dump_node(out, child, depth + 1, identity);
        }
    }
}

/// Pieces written back in template syntax.
pub(crate) fn pieces_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_string(),
            Piece::Attr(a) => format!("{{{a}}}"),
            Piece::Capture(c) => format!("{{+{c}}}"),
            Piece::OneOf { values, .. } => format!("{{{}}}", values.join("|")),
        })
        .collect()
}
