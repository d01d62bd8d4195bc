//! The fast rule reader against pest's path: on every chunk it either declines or builds
//! exactly what pest builds, spans included.

use super::super::{chunks, parse_chunk, parse_chunk_with_pest};
use super::rule_line;
use crate::ast::Item;

#[path = "../../../benches/common/policy_gen.rs"]
#[allow(dead_code, unreachable_pub)] // the request lists and constants are for the benches
mod policy_gen;

/// Checks one chunk at `offset`: if the fast reader accepts it, pest's path accepts it too
/// and builds the same items; and the parser's answer (whichever path gives it) is pest's.
/// Returns whether the fast reader accepted it.
fn same_as_pest(chunk: &str, offset: usize) -> bool {
    let fast = rule_line(chunk, offset).map(|rule| vec![Item::Rule(rule)]);
    let pest = parse_chunk_with_pest(chunk, offset);
    if let Some(items) = &fast {
        match &pest {
            Ok(pest_items) => assert_eq!(
                items, pest_items,
                "the fast reader built another AST for {chunk:?}"
            ),
            Err(errors) => {
                panic!("the fast reader accepted {chunk:?}, which pest rejects: {errors:?}")
            }
        }
    }
    assert_eq!(
        parse_chunk(chunk, offset),
        pest,
        "parse_chunk differs from pest's path on {chunk:?}"
    );
    fast.is_some()
}

/// Every chunk of `text`, as the parser cuts it; returns (chunks, accepted by the fast reader).
fn check_text(text: &str) -> (usize, usize) {
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let mut accepted = 0;
    let all = chunks(text, bom);
    for &(start, end) in &all {
        accepted += usize::from(same_as_pest(&text[start..end], start));
    }
    (all.len(), accepted)
}

fn policy_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            policy_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "policy") {
            out.push(path);
        }
    }
}

#[test]
fn every_policy_of_the_repository_reads_the_same() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["policies", "tests", "examples", "docs", "bench"] {
        policy_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 40, "found only {} policy files", files.len());
    let mut accepted = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        accepted += check_text(&text).1;
    }
    assert!(
        accepted > 100,
        "the fast reader accepted only {accepted} chunks"
    );
}

#[test]
fn generated_policies_read_the_same_and_every_rule_takes_the_fast_path() {
    for rules in [10, 1_000, 5_000] {
        let text = policy_gen::generate(rules).text;
        let (_, accepted) = check_text(&text);
        // Every rule, the header's connect rule included, is one line of the common
        // shape; the identity blocks and comments are not.
        assert_eq!(accepted, rules, "{rules} rules");
    }
}

/// A small seeded generator (xorshift64*), so a failure reproduces.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Blanks between tokens: mostly one space, sometimes none, tabs or several.
fn blanks(random: &mut Random) -> &'static str {
    random.pick(&[" ", " ", " ", " ", "  ", "\t", " \t ", ""])
}

/// A rule line built from the grammar's pieces, valid or nearly so.
/// One to four of `items`, comma-separated with random blanks around each comma.
fn push_list(line: &mut String, random: &mut Random, items: &[&str]) {
    for i in 0..=random.below(3) {
        if i > 0 {
            line.push_str(blanks(random));
            line.push(',');
            line.push_str(blanks(random));
        }
        line.push_str(random.pick(items));
    }
}

fn rule_text(random: &mut Random) -> String {
    let mut line = String::new();
    line.push_str(random.pick(&["", "", "", " ", "\t", "  "]));
    if random.below(3) == 0 {
        let label = random.pick(&["mobile-requests", "x", "", "a b", "é", "q\"", "1-2"]);
        line.push_str(&format!("@id(\"{label}\")"));
        line.push_str(blanks(random));
    }
    line.push_str(random.pick(&["allow", "deny", "allow", "deny", "allows", "Deny"]));
    line.push_str(random.pick(&[" ", " ", "\t", "  ", ""]));
    let names = [
        "mobile", "gateway", "any", "service", "_x", "a-b", "anyone", "any-x", "x9",
    ];
    push_list(&mut line, random, &names);
    line.push_str(random.pick(&[" ", " ", "\t", "  "]));
    let actions = [
        "connect",
        "publish",
        "retain",
        "subscribe",
        "receive",
        "publishx",
    ];
    push_list(&mut line, random, &actions);
    if random.below(5) != 0 {
        line.push_str(blanks(random));
        let templates = [
            "c/xfi/{pid}_{aid}/svc1/{client}/{+rid}",
            "c/{ten}/+/svc{s}/+/{success|failure}",
            "a/#",
            "",
            "x/{sid in services}/é/日本",
            "a/{pid",
            "a/b#",
            "a/{x||y}",
            "$aws/things/{pid}/#",
        ];
        line.push('"');
        line.push_str(random.pick(&templates));
        line.push('"');
    }
    if random.below(4) == 0 {
        line.push_str(blanks(random));
        line.push_str(random.pick(&["# note", "#", "# \"quoted\"", "# é\r", "# a # b  "]));
    }
    line.push_str(random.pick(&["", " ", "\t", ""]));
    line.push_str(random.pick(&["\n", "\n", "\n", "\r\n", ""]));
    line
}

/// Characters a mutation inserts: the grammar's punctuation, blanks, line ends, the
/// forbidden and the non-ASCII.
const INSERTS: &[char] = &[
    ' ', '\t', '\r', '\n', '"', '#', ',', '@', '(', ')', '{', '}', '+', '/', '|', '-', '_', 'a',
    'y', 'Z', '0', '\u{0}', '\u{FEFF}', 'é', '日', '\u{7}', '.', '=', '\\',
];

/// One random edit of `line`: truncate, insert (often a blank), delete, replace or repeat a
/// piece.
fn mutate(line: &str, random: &mut Random) -> String {
    let chars: Vec<char> = line.chars().collect();
    let at = random.below(chars.len() + 1);
    let mut out: Vec<char> = chars.clone();
    match random.below(6) {
        0 => out.truncate(at),
        5 => out.insert(at, if random.below(2) == 0 { ' ' } else { '\t' }),
        1 => out.insert(at, INSERTS[random.below(INSERTS.len())]),
        2 if at < chars.len() => {
            let len = 1 + random.below((chars.len() - at).min(4));
            out.drain(at..at + len);
        }
        3 if at < chars.len() => out[at] = INSERTS[random.below(INSERTS.len())],
        _ => {
            let end = (at + 1 + random.below(6)).min(chars.len());
            let piece: Vec<char> = chars[at.min(end)..end].to_vec();
            out.splice(at..at, piece);
        }
    }
    out.into_iter().collect()
}

#[test]
fn generated_and_mutated_rule_lines_read_the_same() {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let (mut generated, mut generated_fast) = (0, 0);
    let (mut mutated, mut mutated_fast) = (0, 0);
    for _ in 0..4_000 {
        let line = rule_text(&mut random);
        let offset = random.below(1_000);
        generated += 1;
        let accepted = same_as_pest(&line, offset);
        generated_fast += usize::from(accepted);
        // Edits of a line the reader takes land near its boundary: one edit, and a chain.
        let mut edits = vec![mutate(&line, &mut random), mutate(&line, &mut random)];
        let mut edited = line;
        for _ in 0..3 {
            edited = mutate(&edited, &mut random);
            edits.push(edited.clone());
        }
        if !accepted {
            edits.truncate(1);
        }
        for edit in edits {
            mutated += 1;
            mutated_fast += usize::from(same_as_pest(&edit, offset));
        }
    }
    // Neither half is vacuous: the fast reader takes many of the lines, and declines many.
    assert!(
        generated_fast * 5 > generated && generated_fast * 10 < generated * 9,
        "fast path took {generated_fast} of {generated} generated lines"
    );
    assert!(
        mutated_fast * 10 > mutated,
        "fast path took {mutated_fast} of {mutated} mutated lines"
    );
}

/// The odd shapes, one by one: each either declines or matches pest.
#[test]
fn odd_lines_read_the_same() {
    let lines = [
        "allow any connect",
        "allow any connect   \n",
        "allow any connect # c  \r\n",
        "allow any connect#c\n",
        "allow any connect\r",
        "allow any connect\r\r\n",
        "allow any connect\n\n",
        "allow any connect\nallow any connect\n",
        "allow any publish \"a\"\"b\"\n",
        "allow any publish\"a/b\"\n",
        "allow mobile,gateway publish,receive \"a\"\n",
        "allow mobile , gateway publish , receive \"a\"   # x\n",
        "allow mobile, publish \"a\"\n",
        "allow any, mobile connect\n",
        "allow anyone connect\n",
        "allow any-one connect\n",
        "allowmobile connect\n",
        "allow\tmobile\tconnect\n",
        "@id(\"a\")allow any connect\n",
        "@id(\"a\") @id(\"b\") allow any connect\n",
        "@id(\"a\" allow any connect\n",
        "@id( \"a\") allow any connect\n",
        "  @id(\"\") deny any connect\n",
        "allow a,b,c,d,e,f,g,h,i,j connect\n",
        "allow a connect,connect,connect,connect,connect,connect,connect,connect,connect\n",
        "allow any publish \"a\r\"\n",
        "allow any publish \"\u{0}\"\n",
        "allow any publish \"\u{FEFF}\"\n",
        "\u{FEFF}allow any connect\n",
        " \u{FEFF}allow any connect\n",
        "allow any publish \"a\" x\n",
        "allow any publish \"a/{+b}/{c in d}/{e|f}\" # \u{0}\n",
        "allow any connect \\\n",
        "deny any retain, subscribe\t\"#\"\t#\t\n",
        "",
        "\n",
        " ",
        "# only a comment\n",
        "set s = a\n",
    ];
    for (i, line) in lines.iter().enumerate() {
        same_as_pest(line, i * 7);
    }
    assert!(same_as_pest("allow any connect   \n", 0));
    assert!(same_as_pest("@id(\"a\")allow any connect\n", 0));
}

/// Hostile lines cost linear time and never panic: a megabyte-long template, deep
/// braces, a megabyte of blanks, a list far past the reader's inline capacity.
#[test]
fn hostile_lines_are_read_or_declined_without_panicking() {
    let long = format!("allow any publish \"{}\"\n", "a/".repeat(500_000));
    assert!(rule_line(&long, 0).is_some());
    let braces = format!("allow any publish \"{}\"\n", "{".repeat(1_000_000));
    assert!(rule_line(&braces, 0).is_none());
    let blanks = format!("allow{}any connect\n", " ".repeat(1_000_000));
    assert!(rule_line(&blanks, 0).is_some());
    let names = format!("allow a{} connect\n", ", a".repeat(100_000));
    assert!(rule_line(&names, 0).is_none());
    assert!(rule_line("allow any connect\n", 5).is_some());
}
