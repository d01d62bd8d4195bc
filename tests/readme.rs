//! The README's library example is the crate documentation's doctest: the two must stay
//! equal, so the example a reader copies is one `cargo test --doc` runs.

/// The example's lines in the README (the ```rust block under "## Using the library").
fn readme_example() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let section = readme
        .split("## Using the library")
        .nth(1)
        .expect("the README has a library section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a rust block");
    block.lines().map(str::to_string).collect()
}

/// The doctest's lines in `src/lib.rs`, without rustdoc's hidden (`# `) lines.
fn lib_example() -> Vec<String> {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"))
        .expect("read src/lib.rs");
    let docs: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = docs.iter().position(|l| *l == "```").expect("a doctest") + 1;
    let end = start
        + docs[start..]
            .iter()
            .position(|l| *l == "```")
            .expect("its end");
    docs[start..end]
        .iter()
        .filter(|l| !l.starts_with("# "))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn the_readme_example_is_the_crate_doctest() {
    assert_eq!(readme_example(), lib_example());
}
