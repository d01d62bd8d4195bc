//! The differential test's policy generator: random policy TEXT written to try what an
//! attacker or a careless author would (requests for it: [`super::traffic`]).
//!
//! Policies hold identities of every kind with attributes bound from claims, certificate
//! fields or one split value (`claim "sub" as "{pid}:{aid}"`), `require` lines (`==`,
//! `in SET`, `eui64`, `uuid`), client templates with captures before, between and after
//! text; sets small and large (thousands of values), used alone and mixed with text,
//! attributes and captures in one level; `$`-prefixed templates and leading captures.

use std::fmt::Write as _;

/// The source of every choice: splitmix64 from a seed (tiny, seedable, good enough to pick
/// from lists), or a fuzzer's bytes (`fuzz/fuzz_targets/decide.rs`): each choice reads the
/// next one to four bytes, so that a mutated byte changes one choice; once they run out,
/// every choice is the first option and every `chance` false, so a short input makes a
/// small, plain policy.
pub struct Rng {
    state: u64,
    tape: Option<(Vec<u8>, usize)>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            tape: None,
        }
    }

    #[allow(dead_code)] // the fuzz target's constructor
    pub fn from_bytes(bytes: &[u8]) -> Rng {
        Rng {
            state: 0,
            tape: Some((bytes.to_vec(), 0)),
        }
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        let Some((bytes, at)) = &mut self.tape else {
            return (self.next() % n as u64) as usize;
        };
        let width = match n {
            0..=0x100 => 1,
            0x101..=0x1_0000 => 2,
            _ => 4,
        };
        if *at >= bytes.len() {
            return 0;
        }
        let mut value = 0usize;
        for _ in 0..width {
            value = (value << 8) | usize::from(bytes.get(*at).copied().unwrap_or(0));
            *at += 1;
        }
        value % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        if matches!(&self.tape, Some((bytes, at)) if *at >= bytes.len()) {
            return false;
        }
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
pub const SET_VALUES: &[&str] = &[
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
    if kind != "anonymous" {
        // Each identity its own anchors: identities of one kind never share trust.
        let _ = writeln!(out, "    trust \"t{index}\"");
    }
    let extract = attribute_lines(rng, kind, &credential, out);
    let bound: Vec<&'static str> = credential.iter().chain(&captures).copied().collect();
    let requires = require_lines(rng, &bound, sets, out);
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

/// The lines binding the credential's attributes: one per attribute, or (sometimes, when
/// there are two) one extraction splitting a single value, whose template is returned.
fn attribute_lines(
    rng: &mut Rng,
    kind: &str,
    credential: &[&'static str],
    out: &mut String,
) -> Option<Vec<Part>> {
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
                "claim \"sub\""
            } else {
                "subject.UID"
            };
            let _ = writeln!(out, "    {source} as \"{}\"", template_text(parts));
        }
        None => {
            for attr in credential {
                let source = match (kind, *attr) {
                    ("jwt", a) => format!("claim \"{a}\""),
                    (_, "pid") => "san.dirname.O".to_string(),
                    _ => "san.dirname.CN".to_string(),
                };
                let _ = writeln!(out, "    {attr} = {source}");
            }
        }
    }
    extract
}

/// Sometimes `require aid is eui64|uuid`, `require pid in SET`, `require pid == aid`.
fn require_lines(
    rng: &mut Rng,
    bound: &[&'static str],
    sets: &[&str],
    out: &mut String,
) -> Vec<(&'static str, Requirement)> {
    let mut requires = Vec::new();
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
    requires
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
            // An attribute between two captures (`{+a}:{pid}:{+b}`) is refused by the
            // checker (one level could belong to two accounts); a capture before the
            // attributes and text after them is the widest form allowed.
            22 if has("pid") && has("aid") => "{+a}:{pid}_{aid}".to_string(),
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
