//! The layering of `docs/architecture.md`, enforced: every `crate::` path in `src/**/*.rs`
//! (in `use` lines and in expressions, test modules included) must name the file's own
//! top-level module or one of a strictly lower layer. The layer list is read from the
//! ` ```layers ` block of `docs/architecture.md`, so the document and this test cannot
//! disagree; a module missing from it fails too. Comments, strings and character literals
//! are skipped. A root re-export (`crate::Engine`) is not a module and fails: inside the
//! crate, code names the module a thing comes from (`crate::decide::Engine`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layer of each top-level module (0 = the bottom), from the architecture document.
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("read doc");
    let block = doc
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```layers block");
    let rows: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut layer = BTreeMap::new();
    for (depth, row) in rows.iter().rev().enumerate() {
        let names = row.split("  ").next().unwrap_or("");
        for name in names.split_whitespace() {
            assert!(
                layer.insert(name.to_string(), depth).is_none(),
                "{name} twice"
            );
        }
    }
    layer
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a Rust file with comments removed and string and character literals
/// emptied.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let skip_to = |from: usize, pat: &str| text[from..].find(pat).map_or(b.len(), |j| from + j);
    while i < b.len() {
        let rest = &text[i..];
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if rest.starts_with("//") {
            i = skip_to(i, "\n");
        } else if rest.starts_with("/*") {
            i = skip_to(i + 2, "*/") + 2;
        } else if !ident_before && (rest.starts_with("r\"") || rest.starts_with("r#")) {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            i = skip_to(i + 2 + hashes, &close) + close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i = skip_to(i + 2, "'") + 1;
        } else if b[i] == b'\'' && rest.chars().nth(2) == Some('\'') {
            i += 2 + rest[1..].chars().next().map_or(0, char::len_utf8);
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The top-level modules a file's code names through `crate::`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or an identifier ending in `crate`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    found.extend(first_ident(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            found.extend(first_ident(rest));
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let text = text.trim_start();
    let len = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (len > 0).then(|| text[..len].to_string())
}

#[test]
fn no_module_imports_a_higher_layer() {
    let layer = layers();
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.iter().next().expect("a component").to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = layer.get(&module) else {
            upward.push(format!("src/{module} is not in the ```layers block"));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for target in crate_paths(&code_only(&text)) {
            match layer.get(&target) {
                _ if target == module => {}
                Some(&other) if other < own => {}
                Some(_) => upward.push(format!("{} imports crate::{target}", rel.display())),
                None => upward.push(format!(
                    "{} names crate::{target}, not a module of the ```layers block",
                    rel.display()
                )),
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports against the layering:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_sees_imports_and_skips_comments_and_strings() {
    let code = code_only(
        "use crate::{a::X, b, c::{d, e}};\n// crate::f\nlet s = \"crate::g\";\n/* crate::h */\nlet c = '\"'; let r = r#\"crate::i\"#; crate::j::k(); let t = crate::Engine::new;",
    );
    assert_eq!(crate_paths(&code), ["a", "b", "c", "j", "Engine"]);
}

#[test]
fn every_layer_module_exists() {
    for module in layers().keys() {
        let file = root().join("src").join(format!("{module}.rs"));
        let dir = root().join("src").join(module);
        assert!(
            file.exists() || dir.exists(),
            "{module} is in the layers block but not in src/"
        );
    }
}
