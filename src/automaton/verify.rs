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

/// The first invariant a compiled automaton breaks, naming the node (`n12`), set, slot,
/// pattern or rule at fault. Any of these is a compiler bug: `Engine` building panics on
/// it in debug builds and tests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An edge leads to a node that does not exist.
    #[error("n{} has an edge to n{}, beyond {nodes} nodes", node.0, target.0)]
    EdgeOutOfRange {
        /// The node with the edge.
        node: NodeId,
        /// The missing target.
        target: NodeId,
        /// How many nodes there are.
        nodes: usize,
    },
    /// The connect rules and the tries are not one per identity.
    #[error("connect rules ({connect}) and roots ({roots}) disagree on the identity count")]
    IdentityCount {
        /// Identities with a connect-rule list.
        connect: usize,
        /// Identities with a trie root.
        roots: usize,
    },
    /// A root is the target of an edge.
    #[error("root n{} has {parents} parents", node.0)]
    RootWithParent {
        /// The root.
        node: NodeId,
        /// How many edges lead to it.
        parents: u32,
    },
    /// A non-root node has no parent, or several: the tries are not a forest.
    #[error("n{} has {parents} parents (the trie must be a forest)", node.0)]
    NotAForest {
        /// The node.
        node: NodeId,
        /// How many edges lead to it.
        parents: u32,
    },
    /// A slot edge or a pattern's head or tail uses a slot its identity does not have.
    #[error("n{} refers to a slot that identity {identity} does not have", node.0)]
    ForeignSlot {
        /// The node with the slot or pattern edge.
        node: NodeId,
        /// The identity whose trie holds the node.
        identity: usize,
    },
    /// A non-root node has no edge and accepts no rule.
    #[error("n{} is a dead end", node.0)]
    DeadEnd {
        /// The node.
        node: NodeId,
    },
    /// A node's accepts are not in rule (file) order.
    #[error("n{} has accepts out of rule order", node.0)]
    AcceptsOutOfOrder {
        /// The node.
        node: NodeId,
    },
    /// A node accepts a rule that does not exist.
    #[error("n{} accepts unknown rule {}", node.0, rule.0)]
    UnknownRule {
        /// The node.
        node: NodeId,
        /// The rule id.
        rule: RuleId,
    },
    /// A one-of edge names a set that does not exist.
    #[error("n{} has a one-of edge on set {}, beyond {sets} sets", node.0, set.0)]
    SetOutOfRange {
        /// The node.
        node: NodeId,
        /// The set id.
        set: SetId,
        /// How many sets there are.
        sets: usize,
    },
    /// A pattern edge names a pattern that does not exist.
    #[error("n{} has a pattern edge on pattern {}, beyond {patterns} patterns", node.0, pattern.0)]
    PatternOutOfRange {
        /// The node.
        node: NodeId,
        /// The pattern id.
        pattern: PatternId,
        /// How many patterns there are.
        patterns: usize,
    },
    /// A pattern's middle names a set that does not exist.
    #[error("n{}: pattern {} looks up set {}, beyond {sets} sets", node.0, pattern.0, set.0)]
    PatternSetOutOfRange {
        /// The node with the pattern edge.
        node: NodeId,
        /// The pattern id.
        pattern: PatternId,
        /// The set id.
        set: SetId,
        /// How many sets there are.
        sets: usize,
    },
    /// A short literal list is longer than [`LITERAL_LIST_MAX`].
    #[error("n{} has {len} literal edges in a short list", node.0)]
    LiteralListTooLong {
        /// The node.
        node: NodeId,
        /// The list's length.
        len: usize,
    },
    /// Two literal edges of a node have the same text.
    #[error("n{} has a duplicate literal edge `{literal}`", node.0)]
    DuplicateLiteral {
        /// The node.
        node: NodeId,
        /// The level text both edges match.
        literal: String,
    },
    /// The node's allow/deny summary is not the union of its accepts' and its children's.
    #[error("n{} has {found:?} below it, expected {expected:?}", node.0)]
    Below {
        /// The node.
        node: NodeId,
        /// The summary stored.
        found: Below,
        /// The summary its accepts and children give.
        expected: Below,
    },
}

impl Automaton {
    /// Checks the invariants above; returns the first violation found.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let n = self.nodes.len();
        let mut parents = vec![0u32; n];
        for (i, node) in self.nodes.iter().enumerate() {
            for target in node.targets() {
                let t = target.0 as usize;
                if t >= n {
                    return Err(VerifyError::EdgeOutOfRange {
                        node: NodeId(i as u32),
                        target,
                        nodes: n,
                    });
                }
                parents[t] += 1;
            }
            self.verify_node(i, node)?;
        }
        if self.connect.len() != self.roots.len() {
            return Err(VerifyError::IdentityCount {
                connect: self.connect.len(),
                roots: self.roots.len(),
            });
        }
        for (identity, &root) in self.roots.iter().enumerate() {
            self.verify_slots(identity, root)?;
        }
        for (i, &count) in parents.iter().enumerate() {
            let node = NodeId(i as u32);
            match (self.roots.contains(&node), count) {
                (true, 0) | (false, 1) => {}
                (true, parents) => return Err(VerifyError::RootWithParent { node, parents }),
                (false, parents) => return Err(VerifyError::NotAForest { node, parents }),
            }
        }
        Ok(())
    }

    /// Every slot reached from `root` is one of `identity`'s slots.
    fn verify_slots(&self, identity: usize, root: NodeId) -> Result<(), VerifyError> {
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
                return Err(VerifyError::ForeignSlot { node: id, identity });
            }
            stack.extend(node.targets());
        }
        Ok(())
    }

    fn verify_node(&self, i: usize, node: &Node) -> Result<(), VerifyError> {
        let id = NodeId(i as u32);
        let is_root = self.roots.contains(&id);
        let has_edges = node.targets().next().is_some();
        if !is_root && !has_edges && node.exact().is_empty() && node.hash().is_empty() {
            return Err(VerifyError::DeadEnd { node: id });
        }
        for accepts in [node.exact(), node.hash()] {
            if accepts.windows(2).any(|w| w[0].rule >= w[1].rule) {
                return Err(VerifyError::AcceptsOutOfOrder { node: id });
            }
            if let Some(a) = accepts
                .iter()
                .find(|a| a.rule.0 as usize >= self.rule_count)
            {
                return Err(VerifyError::UnknownRule {
                    node: id,
                    rule: a.rule,
                });
            }
        }
        self.verify_sets_and_patterns(id, node)?;
        if let LiteralEdges::Few(list) = node.literal() {
            if list.len() > LITERAL_LIST_MAX {
                return Err(VerifyError::LiteralListTooLong {
                    node: id,
                    len: list.len(),
                });
            }
            let mut keys: Vec<&str> = list.iter().map(|(k, _)| &**k).collect();
            keys.sort_unstable();
            if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(VerifyError::DuplicateLiteral {
                    node: id,
                    literal: w[0].to_string(),
                });
            }
        }
        let below = below_of(&self.nodes, node);
        if below != node.below() {
            return Err(VerifyError::Below {
                node: id,
                found: node.below(),
                expected: below,
            });
        }
        Ok(())
    }

    /// Every set and pattern a node's edges name exists, and so does every set a pattern
    /// looks up.
    fn verify_sets_and_patterns(&self, id: NodeId, node: &Node) -> Result<(), VerifyError> {
        let sets = self.sets.len();
        for &(guard, _) in node.guarded() {
            match guard {
                Guard::OneOf(set) if set.0 as usize >= sets => {
                    return Err(VerifyError::SetOutOfRange {
                        node: id,
                        set,
                        sets,
                    });
                }
                Guard::Pattern(pattern) => {
                    let Some(level) = self.patterns.get(pattern.0 as usize) else {
                        return Err(VerifyError::PatternOutOfRange {
                            node: id,
                            pattern,
                            patterns: self.patterns.len(),
                        });
                    };
                    if let Middle::Set(set) = level.middle {
                        if set.0 as usize >= sets {
                            return Err(VerifyError::PatternSetOutOfRange {
                                node: id,
                                pattern,
                                set,
                                sets,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
