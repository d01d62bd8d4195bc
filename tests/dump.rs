//! `Automaton::dump()` over fixture policies: the compiled form of each
//! `tests/fixtures/dump/*.policy` and of the shipped policies, as reviewed text. A change to
//! how rules become edges (sharing, edge kinds, order) shows up here as a diff to read.

use topicguard::Engine;
use topicguard::policy::Policy;
use topicguard::source::Source;

fn dump(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let name = path
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    let policy = Policy::from_source(&Source::new(name, text)).unwrap_or_else(|e| panic!("{e:?}"));
    let engine = Engine::new(&policy.checked).unwrap_or_else(|e| panic!("{e}"));
    engine.automaton().dump(engine.checked())
}

#[test]
fn fixture_automata_dump_as_reviewed() {
    insta::glob!("fixtures/dump/*.policy", |path| {
        insta::assert_snapshot!(dump(path));
    });
}

#[test]
fn shipped_policy_automata_dump_as_reviewed() {
    insta::glob!("../policies", "*.policy", |path| {
        insta::assert_snapshot!(dump(path));
    });
}
