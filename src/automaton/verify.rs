//! Invariants of a compiled [`Automaton`], checked after every compile in tests and debug
//! builds.
//!
//! 1. Every root, edge target, set, slot and pattern id is in range; a slot (of a slot
//!    edge or of a pattern's head or tail) belongs to the identity whose trie uses it.
//! 2. The graph is a forest: roots have no parent, every other node exactly one.
//! 3. No node is a dead end: each non-root node has an edge or an accept.
//! 4. Accepts at a node are in file (rule id) order, and name existing rules.
//! 5. `below` (what allows and denies lie at or below) is exactly the union of the node's
//!    own accepts and its children's.
//! 6. Short literal lists never exceed [`LITERAL_LIST_MAX`] and hold no duplicate keys.

use super::*;

impl Automaton {
    /// Checks the invariants above; the first violation is returned as text.
    pub fn verify(&self) -> Result<(), String> {
        let n = self.nodes.len();
        let mut parents = vec![0u32; n];
        for (i, node) in self.nodes.iter().enumerate() {
            for target in node.targets() {
                let t = target.0 as usize;
                if t >= n {
                    return Err(format!("n{i} has an edge to n{t}, beyond {n} nodes"));
                }
                parents[t] += 1;
            }
            self.verify_node(i, node)?;
        }
        if self.connect.len() != self.roots.len() {
            return Err("connect rules and roots disagree on the identity count".into());
        }
        for (identity, &root) in self.roots.iter().enumerate() {
            self.verify_slots(identity, root)?;
        }
        for (i, &count) in parents.iter().enumerate() {
            let is_root = self.roots.contains(&NodeId(i as u32));
            match (is_root, count) {
                (true, 0) | (false, 1) => {}
                (true, c) => return Err(format!("root n{i} has {c} parents")),
                (false, c) => {
                    return Err(format!("n{i} has {c} parents (the trie must be a forest)"));
                }
            }
        }
        Ok(())
    }

    /// Every slot reached from `root` is one of `identity`'s slots.
    fn verify_slots(&self, identity: usize, root: NodeId) -> Result<(), String> {
        let count = self.slots.get(identity).map_or(0, Vec::len);
        let in_range = |slot: SlotId| (slot.0 as usize) < count;
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            let Some(node) = self.nodes.get(id.0 as usize) else {
                continue; // reported by the edge check
            };
            let slots_ok = node.guarded().iter().all(|&(guard, _)| match guard {
                Guard::Slot(s) => in_range(s),
                Guard::Pattern(p) => self.patterns.get(p.0 as usize).is_some_and(|p| {
                    [&p.head, &p.tail]
                        .into_iter()
                        .all(|a| !matches!(a, Affix::Slot(s) if !in_range(*s)))
                }),
                Guard::OneOf(_) => true,
            });
            if !slots_ok {
                return Err(format!(
                    "n{} refers to a slot that identity {identity} does not have",
                    id.0
                ));
            }
            stack.extend(node.targets());
        }
        Ok(())
    }

    fn verify_node(&self, i: usize, node: &Node) -> Result<(), String> {
        let is_root = self.roots.contains(&NodeId(i as u32));
        let has_edges = node.targets().next().is_some();
        if !is_root && !has_edges && node.exact().is_empty() && node.hash().is_empty() {
            return Err(format!("n{i} is a dead end"));
        }
        for accepts in [node.exact(), node.hash()] {
            if accepts.windows(2).any(|w| w[0].rule >= w[1].rule) {
                return Err(format!("n{i} has accepts out of rule order"));
            }
            if let Some(a) = accepts
                .iter()
                .find(|a| a.rule.0 as usize >= self.rule_count)
            {
                return Err(format!("n{i} accepts unknown rule {}", a.rule.0));
            }
        }
        let set_in_range = |s: &SetId| (s.0 as usize) < self.sets.len();
        let sets_in_range = node.guarded().iter().all(|(guard, _)| match guard {
            Guard::OneOf(s) => set_in_range(s),
            Guard::Pattern(p) => self
                .patterns
                .get(p.0 as usize)
                .is_some_and(|p| !matches!(&p.middle, Middle::Set(s) if !set_in_range(s))),
            Guard::Slot(_) => true,
        });
        if !sets_in_range {
            return Err(format!("n{i} refers to a set or pattern out of range"));
        }
        if let LiteralEdges::Few(list) = node.literal() {
            if list.len() > LITERAL_LIST_MAX {
                return Err(format!(
                    "n{i} has {} literal edges in a short list",
                    list.len()
                ));
            }
            let mut keys: Vec<&str> = list.iter().map(|(k, _)| &**k).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("n{i} has a duplicate literal edge"));
            }
        }
        let below = below_of(&self.nodes, node);
        if below != node.below() {
            return Err(format!(
                "n{i} has {:?} below it, expected {below:?}",
                node.below()
            ));
        }
        Ok(())
    }
}
