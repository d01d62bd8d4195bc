//! The subscription table: which clients want a topic. Knows nothing of the policy.
//!
//! Filters are stored in a trie over topic levels, with `+` and `#` as ordinary child
//! keys. [`Router::route`] walks it iteratively (no recursion, so a 65,535-level topic
//! cannot blow the stack; the broker caps levels before routing anyway) and visits each
//! trie node at most once. `$` topics are never matched by a `+` or `#` in the first level
//! (MQTT-4.7.2-1). Overlapping subscriptions of one client yield one route with the
//! highest QoS and every subscription identifier; each `$share/<group>/` group yields all
//! its members, one after another under one group number, starting with the round-robin
//! pick: the caller delivers to the first that can take the message (one whose queue is
//! full or whose client is away need not hold the group up). Authorization of each
//! delivery is the caller's job.

use crate::mqtt::codec::{QoS, SubscriptionOptions};
use crate::mqtt::topic;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A subscribing client (its client id).
pub type ClientKey = Arc<str>;

/// One client's subscription at one filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub(crate) options: SubscriptionOptions,
    pub(crate) subscription_id: Option<u32>,
}

/// Where one message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub(crate) client: ClientKey,
    pub(crate) qos: QoS,
    pub(crate) retain_as_published: bool,
    pub(crate) subscription_ids: SmallVec<[u32; 2]>,
    /// For a `$share/` group member: the group's number in this routing (its members come
    /// one after another, the round-robin pick first); `None` for an ordinary subscription.
    pub group: Option<u32>,
}

impl Route {
    pub(crate) fn is_shared(&self) -> bool {
        self.group.is_some()
    }
}

#[derive(Debug, Default)]
struct Group {
    members: Vec<(ClientKey, Entry)>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subscribers: HashMap<ClientKey, Entry>,
    groups: HashMap<Box<str>, Group>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.groups.is_empty()
    }
}

/// The subscription trie.
#[derive(Debug, Default)]
pub struct Router {
    root: Node,
    count: usize,
}

impl Router {
    pub(crate) fn new() -> Router {
        Router::default()
    }

    /// Subscriptions stored.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds or replaces `client`'s subscription to `filter` (which may be `$share/g/...`).
    /// Returns true if it replaced an existing one. A filter the topic grammar refuses
    /// (the codec and the decision refuse it first) is never added.
    pub fn subscribe(&mut self, client: &ClientKey, filter: &str, entry: Entry) -> bool {
        let Ok((group, inner)) = topic::split_shared(filter) else {
            return false;
        };
        let mut node = &mut self.root;
        for level in inner.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let replaced = match group {
            None => node.subscribers.insert(client.clone(), entry).is_some(),
            Some(group) => {
                let members = &mut node.groups.entry(group.into()).or_default().members;
                match members.iter_mut().find(|(c, _)| c == client) {
                    Some(existing) => {
                        existing.1 = entry;
                        true
                    }
                    None => {
                        members.push((client.clone(), entry));
                        false
                    }
                }
            }
        };
        if !replaced {
            self.count += 1;
        }
        replaced
    }

    /// Removes `client`'s subscription to `filter`; true if it existed.
    pub fn unsubscribe(&mut self, client: &ClientKey, filter: &str) -> bool {
        let Ok((group, inner)) = topic::split_shared(filter) else {
            return false;
        };
        let levels: Vec<&str> = inner.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, client, group);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Every route for a message on `topic`.
    pub fn route(&self, topic: &str) -> Vec<Route> {
        let levels: SmallVec<[&str; 16]> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        let mut routes: Vec<Route> = Vec::new();
        let mut stack: Vec<(&Node, usize)> = vec![(&self.root, 0)];
        while let Some((node, depth)) = stack.pop() {
            let wild_ok = !(dollar && depth == 0);
            if let Some(hash) = node.children.get("#").filter(|_| wild_ok) {
                collect(hash, &mut routes);
            }
            if depth == levels.len() {
                collect(node, &mut routes);
                continue;
            }
            if let Some(child) = node.children.get(levels[depth]) {
                stack.push((child, depth + 1));
            }
            if let Some(child) = node.children.get("+").filter(|_| wild_ok) {
                stack.push((child, depth + 1));
            }
        }
        routes
    }
}

/// Removes along `levels`, pruning empty nodes on the way back. Iterative descent with
/// an explicit path keeps deep filters off the call stack.
fn remove_at(root: &mut Node, levels: &[&str], client: &ClientKey, group: Option<&str>) -> bool {
    fn descend<'n>(node: &'n mut Node, levels: &[&str]) -> Option<&'n mut Node> {
        let mut node = node;
        for level in levels {
            node = node.children.get_mut(*level)?;
        }
        Some(node)
    }
    let Some(node) = descend(root, levels) else {
        return false;
    };
    let removed = match group {
        None => node.subscribers.remove(client).is_some(),
        Some(group) => match node.groups.get_mut(group) {
            None => false,
            Some(g) => {
                let before = g.members.len();
                g.members.retain(|(c, _)| c != client);
                let removed = g.members.len() != before;
                if g.members.is_empty() {
                    node.groups.remove(group);
                }
                removed
            }
        },
    };
    for depth in (0..levels.len()).rev() {
        let Some(parent) = descend(root, &levels[..depth]) else {
            break;
        };
        if parent
            .children
            .get(levels[depth])
            .is_some_and(Node::is_empty)
        {
            parent.children.remove(levels[depth]);
        } else {
            break;
        }
    }
    removed
}

fn collect(node: &Node, routes: &mut Vec<Route>) {
    for (client, entry) in &node.subscribers {
        merge(routes, client, entry);
    }
    for group in node.groups.values() {
        if group.members.is_empty() {
            continue;
        }
        let number = routes
            .iter()
            .filter_map(|r| r.group)
            .max()
            .map_or(0, |n| n + 1);
        let members = group.members.len();
        let pick = group.next.fetch_add(1, Ordering::Relaxed) % members;
        for offset in 0..members {
            let (client, entry) = &group.members[(pick + offset) % members];
            routes.push(Route {
                client: client.clone(),
                qos: entry.options.qos,
                retain_as_published: entry.options.retain_as_published,
                subscription_ids: entry.subscription_id.into_iter().collect(),
                group: Some(number),
            });
        }
    }
}

/// One non-shared route per client: highest QoS, all subscription ids.
fn merge(routes: &mut Vec<Route>, client: &ClientKey, entry: &Entry) {
    if let Some(route) = routes
        .iter_mut()
        .find(|r| !r.is_shared() && r.client == *client)
    {
        route.qos = route.qos.max(entry.options.qos);
        route.retain_as_published |= entry.options.retain_as_published;
        route.subscription_ids.extend(entry.subscription_id);
        return;
    }
    routes.push(Route {
        client: client.clone(),
        qos: entry.options.qos,
        retain_as_published: entry.options.retain_as_published,
        subscription_ids: entry.subscription_id.into_iter().collect(),
        group: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(qos: QoS, id: Option<u32>) -> Entry {
        Entry {
            options: SubscriptionOptions::qos(qos),
            subscription_id: id,
        }
    }

    fn clients(routes: &[Route]) -> Vec<String> {
        let mut out: Vec<String> = routes.iter().map(|r| r.client.to_string()).collect();
        out.sort();
        out
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut r = Router::new();
        let (a, b, c, d): (ClientKey, ClientKey, ClientKey, ClientKey) =
            ("a".into(), "b".into(), "c".into(), "d".into());
        r.subscribe(&a, "x/+/z", entry(QoS::AtMostOnce, None));
        r.subscribe(&b, "x/#", entry(QoS::AtMostOnce, None));
        r.subscribe(&c, "#", entry(QoS::AtMostOnce, None));
        r.subscribe(&d, "$SYS/#", entry(QoS::AtMostOnce, None));
        assert_eq!(clients(&r.route("x/y/z")), ["a", "b", "c"]);
        assert_eq!(clients(&r.route("x")), ["b", "c"]);
        assert_eq!(clients(&r.route("$SYS/load")), ["d"]);
        assert_eq!(clients(&r.route("y")), ["c"]);
        for (filter, topic) in [("x/+/z", "x/y/z"), ("x/#", "x"), ("$SYS/#", "$SYS/load")] {
            assert!(topic::matches(filter, topic));
        }
        assert!(!topic::matches("#", "$SYS/x"));
        assert!(!topic::matches("+/x", "$SYS/x"));
        assert!(!topic::matches("a/+", "a/b/c"));
    }

    #[test]
    fn overlapping_subscriptions_merge_and_unsubscribe_prunes() {
        let mut r = Router::new();
        let a: ClientKey = "a".into();
        r.subscribe(&a, "x/+", entry(QoS::AtMostOnce, Some(1)));
        r.subscribe(&a, "x/#", entry(QoS::ExactlyOnce, Some(2)));
        let routes = r.route("x/y");
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].qos, QoS::ExactlyOnce);
        let mut ids = routes[0].subscription_ids.to_vec();
        ids.sort();
        assert_eq!(ids, [1, 2]);
        assert!(r.unsubscribe(&a, "x/+"));
        assert!(!r.unsubscribe(&a, "x/+"));
        assert!(r.unsubscribe(&a, "x/#"));
        assert!(r.root.is_empty());
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn shared_groups_take_turns() {
        let mut r = Router::new();
        let (a, b): (ClientKey, ClientKey) = ("a".into(), "b".into());
        r.subscribe(&a, "$share/g/t/#", entry(QoS::AtLeastOnce, None));
        r.subscribe(&b, "$share/g/t/#", entry(QoS::AtLeastOnce, None));
        let picks: Vec<String> = (0..4)
            .map(|_| r.route("t/1")[0].client.to_string())
            .collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 2);
        let routes = r.route("t/1");
        assert_eq!(
            clients(&routes),
            ["a", "b"],
            "the pick, then the other member"
        );
        assert!(routes.iter().all(|route| route.group == Some(0)));
        assert!(r.unsubscribe(&a, "$share/g/t/#"));
        assert_eq!(clients(&r.route("t/1")), ["b"]);
    }

    #[test]
    fn deep_topics_route_iteratively() {
        let mut r = Router::new();
        let a: ClientKey = "a".into();
        r.subscribe(&a, "#", entry(QoS::AtMostOnce, None));
        let topic = "/".repeat(65_535);
        assert_eq!(r.route(&topic).len(), 1);
    }
}
