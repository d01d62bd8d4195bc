//! The differential test's generator: random policy TEXT, credentials, client ids and
//! requests, written to try what an attacker or a careless author would.
//!
//! Policies hold identities of every kind with attributes bound from claims, certificate
//! fields or one split value (`claim "sub" as "{pid}:{aid}"`), `require` lines (`==`,
//! `in SET`, `eui64`, `uuid`), client templates with captures before, between and after
//! text; sets small and large (thousands of values), used alone and mixed with text,
//! attributes and captures in one level; `$`-prefixed templates and leading captures.
//! Sessions use values with `_ - : .`, 256-byte values (and 257: refused), values other
//! accounts own, and client ids that must be refused. Requests use the policy's alphabet,
//! the session's own values, large-set values in and out of the set, `$` topics, `#` and
//! `$share/g/#` filters, and hostile topics (too long, too deep, NUL, wildcards).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// splitmix64: tiny, seedable, good enough to pick from lists.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }
}

/// A piece of a client-id or extraction template.
#[derive(Clone, Debug)]
pub enum Part {
    Text(&'static str),
    Attr(&'static str),
    Capture(&'static str),
}

fn template_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.to_string(),
            Part::Attr(a) => format!("{{{a}}}"),
            Part::Capture(c) => format!("{{+{c}}}"),
        })
        .collect()
}

/// What a `require` line asks of an attribute, so sessions can satisfy it (or not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Requirement {
    Eui64,
    Uuid,
    InSet,
    EqualsOther,
}

/// An identity block as generated, kept to make credentials and client ids.
pub struct IdentitySpec {
    pub name: String,
    /// Attributes the credential supplies (`pid`, `aid`).
    pub credential: Vec<&'static str>,
    /// When set, the credential supplies one value split by this template.
    pub extract: Option<Vec<Part>>,
    pub client: Vec<Part>,
    /// Attributes the rules may use: credential, client captures and `client`.
    pub usable: Vec<&'static str>,
    pub requires: Vec<(&'static str, Requirement)>,
}

pub struct GeneratedPolicy {
    pub text: String,
    pub identities: Vec<IdentitySpec>,
    /// The size of the large set `big` (0 when there is none).
    pub big: usize,
    /// Values of the small sets `s` and `t`.
    pub small_sets: Vec<(&'static str, Vec<&'static str>)>,
    /// Every rule's topic template, as written.
    pub templates: Vec<String>,
}

/// Values a small set picks from: `$`, `_ - . :` and values an account may also hold.
const SET_VALUES: &[&str] = &[
    "a", "b", "$s", "p1", "p1_x", "c", "P1", "A-1", "x.y", "a:b", "v0007",
];

/// Values of the large set that are not `vNNNN`: ones attributes or other rules also use.
const BIG_EXTRAS: &[&str] = &["P1", "a", "$s", "x_P1", "p1_x", "A-1", "a:b"];

/// The client template's text pieces: each identity's own prefix, then separators.
const SEPARATORS: &[&str] = &[":", "-", "_", ".", "::", ":x:"];

fn client_template(
    rng: &mut Rng,
    index: usize,
    credential: &[&'static str],
    captures: &[&'static str],
) -> Vec<Part> {
    const PREFIXES: &[&str] = &["c0", "c1", "c2", "c3"];
    let mut slots: Vec<Part> = Vec::new();
    for attr in credential {
        if rng.chance(55) {
            slots.push(Part::Attr(attr));
        }
    }
    for capture in captures {
        slots.push(Part::Capture(capture));
    }
    // Shuffle the slots a little: captures before, between or after attributes.
    for i in (1..slots.len()).rev() {
        let j = rng.below(i + 1);
        slots.swap(i, j);
    }
    let mut parts = Vec::new();
    let prefix_first = slots.is_empty() || rng.chance(75);
    if prefix_first {
        parts.push(Part::Text(PREFIXES[index]));
    }
    for (i, slot) in slots.into_iter().enumerate() {
        if i > 0 || prefix_first {
            parts.push(Part::Text(rng.pick(SEPARATORS)));
        }
        parts.push(slot);
    }
    if !prefix_first {
        parts.push(Part::Text(rng.pick(&["-c", ".c", ":end"])));
        parts.push(Part::Text(PREFIXES[index]));
    } else if rng.chance(20) {
        parts.push(Part::Text(rng.pick(&[".", ":z"])));
    }
    parts
}

fn identity(rng: &mut Rng, index: usize, sets: &[&str], out: &mut String) -> IdentitySpec {
    let kind = rng.pick(&["jwt", "certificate", "anonymous"]);
    let name = format!("id{index}");
    let mut credential = Vec::new();
    if kind != "anonymous" {
        for attr in ["pid", "aid"] {
            if rng.chance(65) {
                credential.push(attr);
            }
        }
    }
    let mut captures = Vec::new();
    if kind == "anonymous" && rng.chance(60) {
        captures.push("pid");
    }
    for capture in ["inst", "dev"] {
        if rng.chance(35) {
            captures.push(capture);
        }
    }
    let client = client_template(rng, index, &credential, &captures);
    let _ = writeln!(out, "identity {name} from {kind} {{");
    let extract = (credential.len() == 2 && rng.chance(35)).then(|| {
        let shape: &[Part] = rng.pick(&[
            &[Part::Attr("pid"), Part::Text(":"), Part::Attr("aid")][..],
            &[
                Part::Text("u-"),
                Part::Attr("pid"),
                Part::Text("."),
                Part::Attr("aid"),
            ][..],
            &[Part::Attr("aid"), Part::Text("_"), Part::Attr("pid")][..],
        ]);
        shape.to_vec()
    });
    match &extract {
        Some(parts) => {
            let source = if kind == "jwt" {
                "claim \"sub\"".to_string()
            } else {
                "subject.UID".to_string()
            };
            let _ = writeln!(out, "    {source} as \"{}\"", template_text(parts));
        }
        None => {
            for attr in &credential {
                let source = match (kind, *attr) {
                    ("jwt", a) => format!("claim \"{a}\""),
                    (_, "pid") => "san.dirname.O".to_string(),
                    _ => "san.dirname.CN".to_string(),
                };
                let _ = writeln!(out, "    {attr} = {source}");
            }
        }
    }
    let mut requires = Vec::new();
    let bound: Vec<&'static str> = credential.iter().chain(&captures).copied().collect();
    if bound.contains(&"aid") && rng.chance(15) {
        let check = rng.pick(&[Requirement::Eui64, Requirement::Uuid]);
        let word = if check == Requirement::Eui64 {
            "eui64"
        } else {
            "uuid"
        };
        let _ = writeln!(out, "    require aid is {word}");
        requires.push(("aid", check));
    }
    if bound.contains(&"pid") && !sets.is_empty() && rng.chance(20) {
        let _ = writeln!(out, "    require pid in {}", rng.pick(sets));
        requires.push(("pid", Requirement::InSet));
    }
    if bound.contains(&"pid") && bound.contains(&"aid") && rng.chance(10) {
        let _ = writeln!(out, "    require pid == aid");
        requires.push(("pid", Requirement::EqualsOther));
    }
    if rng.chance(30) {
        let _ = writeln!(out, "    subscriptions filtered");
    }
    let _ = writeln!(out, "    client \"{}\"", template_text(&client));
    let _ = writeln!(out, "}}");
    let mut usable = bound;
    usable.push("client");
    IdentitySpec {
        name,
        credential,
        extract,
        client,
        usable,
        requires,
    }
}

/// One template level. `attrs`: what every identity of the rule binds.
fn level(rng: &mut Rng, index: usize, attrs: &[&str], policy: &GeneratedPolicy) -> String {
    let has = |a: &str| attrs.contains(&a);
    let set_names: Vec<&str> = policy.small_sets.iter().map(|(n, _)| *n).collect();
    let small = !set_names.is_empty();
    let big = policy.big > 0;
    loop {
        let choice = match rng.below(40) {
            0 => "a".to_string(),
            1 => "b".to_string(),
            2 => "$s".to_string(),
            3 => "p1".to_string(),
            4 => "p1_x".to_string(),
            5 => String::new(),
            6..=8 => "+".to_string(),
            9 => "{+x}".to_string(),
            10 if has("pid") => "{pid}".to_string(),
            11 if has("pid") => "{pid}_x".to_string(),
            12 => "x{+c}".to_string(),
            13 if has("pid") => "{+c}_{pid}".to_string(),
            14 if small => format!("{{v in {}}}", rng.pick(&set_names)),
            15 => "{a|b}".to_string(),
            16 => "{a|$s}".to_string(),
            17 => "{client}".to_string(),
            18 if has("pid") && has("aid") => "{pid}_{aid}".to_string(),
            19 if has("pid") && small => format!("{{pid}}-{{v in {}}}", rng.pick(&set_names)),
            20 => "{+a}_x".to_string(),
            21 => "x_{+a}".to_string(),
            22 if has("pid") => "{+a}:{pid}:{+b}".to_string(),
            23 if index == 0 => "{+c}$s".to_string(),
            24 => "{+c}x".to_string(),
            25 => "$SYS".to_string(),
            26 if big => "{v in big}".to_string(),
            27 if big && has("pid") => "{pid}_{v in big}".to_string(),
            28 if big => "x_{v in big}".to_string(),
            29 if big => "{v in big}:{+c}".to_string(),
            30 if has("aid") => "{aid}.{+c}".to_string(),
            31 if has("inst") => "{inst}".to_string(),
            32 if has("inst") => "i-{inst}".to_string(),
            33 if has("dev") && has("pid") => "{pid}:{dev}".to_string(),
            34 if big && has("aid") => "{v in big}-{aid}".to_string(),
            35 => "{+c}".to_string(),
            36 => "{+c}$".to_string(),
            37 => "a.b".to_string(),
            38 if has("client") && has("pid") => "{client}.{pid}".to_string(),
            39 => "$t".to_string(),
            _ => continue,
        };
        return choice;
    }
}

fn template(rng: &mut Rng, attrs: &[&str], policy: &GeneratedPolicy) -> String {
    let count = rng.range(1, 4);
    let mut levels: Vec<String> = (0..count).map(|i| level(rng, i, attrs, policy)).collect();
    if rng.chance(30) {
        let last = levels.len() - 1;
        levels[last] = "#".to_string();
    }
    levels.join("/")
}

fn rule(rng: &mut Rng, policy: &GeneratedPolicy, out: &mut String, templates: &mut Vec<String>) {
    let identities = &policy.identities;
    let effect = if rng.chance(35) { "deny" } else { "allow" };
    let who: Vec<usize> = if rng.chance(30) {
        (0..identities.len()).collect()
    } else {
        let chosen: Vec<usize> = (0..identities.len()).filter(|_| rng.chance(50)).collect();
        if chosen.is_empty() {
            vec![rng.below(identities.len())]
        } else {
            chosen
        }
    };
    let attrs: Vec<&str> = ["pid", "aid", "client", "inst", "dev"]
        .into_iter()
        .filter(|a| who.iter().all(|&i| identities[i].usable.contains(a)))
        .collect();
    let who_text = if who.len() == identities.len() && rng.chance(70) {
        "any".to_string()
    } else {
        let names: Vec<&str> = who.iter().map(|&i| identities[i].name.as_str()).collect();
        names.join(", ")
    };
    if rng.chance(8) {
        let _ = writeln!(out, "{effect} {who_text} connect");
        return;
    }
    let mut actions: Vec<&str> = Vec::new();
    for (action, percent) in [
        ("publish", 40),
        ("retain", 25),
        ("subscribe", 55),
        ("receive", 35),
    ] {
        if rng.chance(percent) {
            actions.push(action);
        }
    }
    if actions.is_empty() {
        actions.push(rng.pick(&["publish", "subscribe", "receive"]));
    }
    let template = template(rng, &attrs, policy);
    let _ = writeln!(
        out,
        "{effect} {who_text} {} \"{template}\"",
        actions.join(", ")
    );
    templates.push(template);
}

/// The large set's text: `vNNNN` for `0..size` and a few values other patterns use.
fn big_set(size: usize) -> String {
    let mut values: Vec<String> = (0..size).map(|i| format!("v{i:04}")).collect();
    values.extend(BIG_EXTRAS.iter().map(|v| v.to_string()));
    format!("set big = {}\n", values.join(", "))
}

pub fn policy(rng: &mut Rng) -> GeneratedPolicy {
    let mut text = String::new();
    let mut small_sets = Vec::new();
    for name in ["s", "t"] {
        if rng.chance(40) {
            let mut values: Vec<&str> = SET_VALUES
                .iter()
                .copied()
                .filter(|_| rng.chance(35))
                .collect();
            if values.is_empty() {
                values.push(rng.pick(SET_VALUES));
            }
            let _ = writeln!(text, "set {name} = {}", values.join(", "));
            small_sets.push((name, values));
        }
    }
    let big = if rng.chance(3) {
        rng.pick(&[1_000, 2_000, 3_000])
    } else {
        0
    };
    if big > 0 {
        text.push_str(&big_set(big));
    }
    let set_names: Vec<&str> = small_sets.iter().map(|(n, _)| *n).collect();
    let identities: Vec<IdentitySpec> = (0..rng.range(1, 3))
        .map(|i| identity(rng, i, &set_names, &mut text))
        .collect();
    let mut policy = GeneratedPolicy {
        text,
        identities,
        big,
        small_sets,
        templates: Vec::new(),
    };
    let mut rules = String::new();
    let mut templates = Vec::new();
    for _ in 0..rng.range(1, 14) {
        rule(rng, &policy, &mut rules, &mut templates);
    }
    policy.text.push_str(&rules);
    policy.templates = templates;
    policy
}

// ------------------------------------------------------------------ sessions

/// A 256-byte value: the longest an attribute may be.
pub fn longest_value() -> String {
    "L".repeat(256)
}

/// Ordinary values, including ones with `_ - : .` and ones other patterns use.
const VALUES: &[&str] = &[
    "P1", "P2", "a", "b", "p1", "x", "A1", "P1_A1", "A-1", "a:b", "v.1", "x_P1", "v0007", "c",
];
const BAD_VALUES: &[&str] = &["a/b", "+", "", "$s", "#", "a b", "é", "x\u{1}"];
const EUI64: &[&str] = &["0123456789abcdef", "0123456789ABCDEF", "0123456789abcde"];
const UUIDS: &[&str] = &[
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400-E29B-41D4-A716-446655440000",
    "550e8400e29b41d4a716446655440000",
];

/// A credential, client id and identity name for one connection, sometimes wrong.
pub struct SessionSpec {
    pub kind: String,
    pub attrs: Vec<(String, String)>,
    pub client_id: String,
    /// The raw value an extraction splits, when the identity extracts.
    pub raw: Option<String>,
}

fn value(rng: &mut Rng, attr: &str, spec: &IdentitySpec, policy: &GeneratedPolicy) -> String {
    let required = spec
        .requires
        .iter()
        .find(|(a, _)| *a == attr)
        .map(|(_, r)| *r);
    if rng.chance(50) {
        match required {
            Some(Requirement::Eui64) => return rng.pick(EUI64).to_string(),
            Some(Requirement::Uuid) => return rng.pick(UUIDS).to_string(),
            Some(Requirement::InSet) => {
                let (_, values) = rng.pick(&policy.small_sets.iter().collect::<Vec<_>>());
                return rng.pick(values).to_string();
            }
            _ => {}
        }
    }
    match rng.below(100) {
        0 | 1 => rng.pick(BAD_VALUES).to_string(),
        2 | 3 => longest_value(),
        4 => "L".repeat(257),
        5 => rng.pick(EUI64).to_string(),
        _ => rng.pick(VALUES).to_string(),
    }
}

/// A capture's value: usually plain, sometimes holding the template's own separators.
fn capture_value(
    rng: &mut Rng,
    attr: &str,
    spec: &IdentitySpec,
    policy: &GeneratedPolicy,
) -> String {
    match rng.below(20) {
        0 | 1 => rng
            .pick(&["7:8", "a-b", "x_1", "q.r", ":", "-", "::x"])
            .to_string(),
        2 => String::new(),
        3..=6 => value(rng, attr, spec, policy),
        _ => rng.pick(&["7", "a", "x_1", "P1", "i9"]).to_string(),
    }
}

fn render(
    parts: &[Part],
    attrs: &[(String, String)],
    filled: &mut dyn FnMut(&str) -> String,
) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Attr(a) => {
                let bound = attrs.iter().find(|(k, _)| k == a).map(|(_, v)| v.as_str());
                out.push_str(bound.unwrap_or(""));
            }
            Part::Capture(c) => out.push_str(&filled(c)),
        }
    }
    out
}

pub fn session(rng: &mut Rng, policy: &GeneratedPolicy) -> SessionSpec {
    let spec = &policy.identities[rng.below(policy.identities.len())];
    let mut attrs: Vec<(String, String)> = spec
        .credential
        .iter()
        .map(|a| (a.to_string(), value(rng, a, spec, policy)))
        .collect();
    if spec
        .requires
        .iter()
        .any(|(_, r)| *r == Requirement::EqualsOther)
        && rng.chance(50)
    {
        let pid = attrs[0].1.clone();
        attrs[1].1 = pid;
    }
    let raw = spec
        .extract
        .as_ref()
        .map(|parts| render(parts, &attrs, &mut |_| String::new()));
    let mut client_id = render(&spec.client, &attrs, &mut |c| {
        capture_value(rng, c, spec, policy)
    });
    match rng.below(90) {
        0 => client_id.push('z'),
        1 => {
            client_id.pop();
        }
        2 => client_id = client_id.replacen("P1", "P2", 1),
        3 => client_id.insert(0, ' '),
        4 => client_id = String::new(),
        5 => {
            client_id = format!(
                "{client_id}{}",
                "z".repeat(257usize.saturating_sub(client_id.len()))
            )
        }
        6 => client_id.push('$'),
        _ => {}
    }
    if rng.chance(3) {
        attrs.push(("inst".to_string(), "7".to_string()));
    }
    if rng.chance(2) && !attrs.is_empty() {
        attrs.pop();
    }
    let kind = match rng.below(60) {
        0 => "nobody".to_string(),
        1 => policy.identities[rng.below(policy.identities.len())]
            .name
            .clone(),
        _ => spec.name.clone(),
    };
    SessionSpec {
        kind,
        attrs,
        client_id,
        raw,
    }
}

// ------------------------------------------------------------------ requests

/// A topic level: the policy alphabet, the session's values, large-set values, misses.
fn topic_level(rng: &mut Rng, session: &SessionSpec, big: usize, first: bool) -> String {
    let attr = |i: usize| {
        session
            .attrs
            .get(i)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let big_value = |rng: &mut Rng| format!("v{:04}", rng.below(big.max(1) + 20));
    match rng.below(34) {
        0 => "a".into(),
        1 => "b".into(),
        2 => "$s".into(),
        3 => "p1".into(),
        4 => "p1_x".into(),
        5 => String::new(),
        6 => "x".into(),
        7 => "xq".into(),
        8 => "c".into(),
        9 => "P1".into(),
        10 => "P1_x".into(),
        11 => "q_P1".into(),
        12 => "x_P1".into(),
        13 => session.client_id.clone(),
        14 => format!("{}_x", attr(0)),
        15 => attr(0),
        16 => format!("q_{}", attr(0)),
        17 => "$t".into(),
        18 => format!("{}_{}", attr(0), attr(1)),
        19 => "a_x".into(),
        20 => "x_a".into(),
        21 => format!("{}-{}", attr(0), rng.pick(SET_VALUES)),
        22 => format!("q:{}:r", attr(0)),
        23 => big_value(rng),
        24 => format!("{}_{}", attr(0), big_value(rng)),
        25 => format!("x_{}", big_value(rng)),
        26 => format!("{}:7", big_value(rng)),
        27 => format!("{}-{}", big_value(rng), attr(1)),
        28 if first => rng.pick(&["$SYS", "$", "x$s", "$s$s", "a$s", "$x"]).into(),
        29 => format!("{}.{}", attr(1), rng.pick(&["", "7", "q.r"])),
        30 => format!("i-{}", rng.pick(&["7", "a", "x_1"])),
        31 => format!("{}.{}", session.client_id, attr(0)),
        32 => rng.pick(&["7", "a", "x_1", "7:8", "a.b", "A-1"]).into(),
        _ => "A1".into(),
    }
}

/// Topics no rule is needed to refuse: empty, wildcards, NUL, too long or too deep, and
/// one level that backtracking matchers choke on.
fn hostile_topic(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => "a/+".into(),
        2 => "#".into(),
        3 => "a\u{0}b".into(),
        4 => "$share/g/a".into(),
        5 => "$queue/a".into(),
        6 => vec!["a"; 128].join("/"),
        7 => vec!["a"; 129].join("/"),
        8 => format!("{}\u{0}", vec!["a"; 129].join("/")),
        9 => "x".repeat(65_536),
        10 => format!("m{}x", ":".repeat(300)),
        _ => format!("a/{}", "x".repeat(65_533)),
    }
}

/// What a request generator knows: the policy and the session as the reference bound it.
pub struct Context<'a> {
    pub policy: &'a GeneratedPolicy,
    pub session: &'a SessionSpec,
    /// The bound attributes (with client-template captures), empty if binding was refused.
    pub attrs: &'a BTreeMap<String, String>,
}

/// A topic level filling one `{...}` or wildcard of a template: usually what matches it
/// for this session, sometimes a near miss.
fn fill(rng: &mut Rng, expression: &str, context: &Context<'_>) -> String {
    let session_value = |name: &str| context.attrs.get(name).cloned();
    if let Some(_capture) = expression.strip_prefix('+') {
        return rng
            .pick(&["", "7", "x_1", "a:b", "zz", "$s", "P1", "-", "_", "v0007"])
            .to_string();
    }
    if let Some((_, set)) = expression.split_once(" in ") {
        if set == "big" {
            let size = context.policy.big;
            return if rng.chance(85) {
                format!("v{:04}", rng.below(size))
            } else {
                let past_the_end = format!("v{size:04}");
                rng.pick(&[past_the_end.as_str(), "v", "P1", "$s"])
                    .to_string()
            };
        }
        let values = context.policy.small_sets.iter().find(|(n, _)| *n == set);
        return match values {
            Some((_, values)) if rng.chance(85) => rng.pick(values).to_string(),
            _ => rng.pick(SET_VALUES).to_string(),
        };
    }
    if expression.contains('|') {
        let options: Vec<&str> = expression.split('|').collect();
        return rng.pick(&options).to_string();
    }
    match session_value(expression) {
        Some(value) if rng.chance(90) => value,
        _ => rng.pick(VALUES).to_string(),
    }
}

/// A template level with every `{...}` filled.
fn fill_level(rng: &mut Rng, level: &str, context: &Context<'_>) -> String {
    let mut out = String::new();
    let mut rest = level;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| c + open);
        out.push_str(&fill(rng, &rest[open + 1..close], context));
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// A topic made from one of the policy's templates, so that rules match often.
fn from_template(rng: &mut Rng, context: &Context<'_>) -> Option<Vec<String>> {
    if context.policy.templates.is_empty() {
        return None;
    }
    let template = rng
        .pick(&context.policy.templates.iter().collect::<Vec<_>>())
        .clone();
    let mut levels = Vec::new();
    for (index, level) in template.split('/').enumerate() {
        match level {
            "#" => {
                for _ in 0..rng.pick(&[0, 0, 1, 1, 2]) {
                    levels.push(topic_level(rng, context.session, context.policy.big, false));
                }
            }
            "+" => levels.push(topic_level(
                rng,
                context.session,
                context.policy.big,
                index == 0,
            )),
            _ => levels.push(fill_level(rng, level, context)),
        }
    }
    if levels.is_empty() {
        levels.push(topic_level(rng, context.session, context.policy.big, true));
    }
    if rng.chance(10) {
        let at = rng.below(levels.len());
        levels[at] = topic_level(rng, context.session, context.policy.big, at == 0);
    }
    Some(levels)
}

fn topic(rng: &mut Rng, context: &Context<'_>) -> String {
    if rng.chance(3) {
        return hostile_topic(rng);
    }
    if rng.chance(55) {
        if let Some(levels) = from_template(rng, context) {
            return levels.join("/");
        }
    }
    let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4, 5]);
    let levels: Vec<String> = (0..count)
        .map(|i| topic_level(rng, context.session, context.policy.big, i == 0))
        .collect();
    levels.join("/")
}

fn filter(rng: &mut Rng, context: &Context<'_>) -> String {
    if rng.chance(3) {
        return rng
            .pick(&[
                "",
                "a/b#",
                "a/#/b",
                "+a",
                "$share/g/",
                "$share//a",
                "$share/g",
                "$share/g+/a",
                "#/a",
                "$queue/#",
            ])
            .to_string();
    }
    if rng.chance(4) {
        return rng
            .pick(&[
                "#",
                "+/#",
                "$share/g/#",
                "$share/g/+/#",
                "$s/#",
                "$SYS/#",
                "+/+",
                "$share/g/$s/#",
            ])
            .to_string();
    }
    let mut levels: Vec<String> = match from_template(rng, context) {
        Some(levels) if rng.chance(55) => levels,
        _ => {
            let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4]);
            (0..count)
                .map(|i| topic_level(rng, context.session, context.policy.big, i == 0))
                .collect()
        }
    };
    for level in levels.iter_mut() {
        if rng.chance(30) {
            *level = "+".to_string();
        }
    }
    if rng.chance(35) {
        let keep = rng.range(0, levels.len());
        levels.truncate(keep);
        levels.push("#".to_string());
    }
    let inner = levels.join("/");
    match rng.below(20) {
        0 | 1 => format!("$share/g/{inner}"),
        2 => format!("$queue/{inner}"),
        _ => inner,
    }
}

/// A request with owned text, so it can be printed and replayed.
#[derive(Clone, Debug)]
pub enum Ask {
    Connect,
    Publish(String, bool),
    Subscribe(String),
    Receive(String),
}

pub fn ask(rng: &mut Rng, context: &Context<'_>) -> Ask {
    match rng.below(20) {
        0 => Ask::Connect,
        1..=5 => Ask::Publish(topic(rng, context), rng.chance(35)),
        6..=8 => Ask::Receive(topic(rng, context)),
        _ => Ask::Subscribe(filter(rng, context)),
    }
}
