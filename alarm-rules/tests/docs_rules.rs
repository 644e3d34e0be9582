//! `docs/rules.md` documents every rule of the built-in pack: a rule added to the pack without
//! a line there fails this test, so the page cannot go stale silently.

use alarm_rules::RuleSet;

const DOC: &str = include_str!("../../docs/rules.md");

#[test]
fn docs_rules_md_names_every_builtin_rule() {
    let missing: Vec<String> = RuleSet::builtin()
        .ids()
        .into_iter()
        .filter(|id| !DOC.contains(&format!("`{id}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md does not mention (as `id`) these built-in rules: {missing:?}"
    );
}

#[test]
fn docs_rules_md_names_no_rule_that_is_gone() {
    // Table rows start with the rule id; every id a row names must be a built-in rule.
    let ids = RuleSet::builtin().ids();
    for line in DOC.lines().filter(|l| l.starts_with("| `")) {
        let id = line[3..].split('`').next().unwrap_or_default();
        assert!(
            ids.iter().any(|x| x == id),
            "docs/rules.md has a row for {id:?}, which is not a built-in rule"
        );
    }
}
