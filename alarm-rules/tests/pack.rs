//! The standard pack parses, and every rule cites a source.

use alarm_rules::RuleSet;

#[test]
fn builtin_pack_parses_and_cites_sources() {
    let set = RuleSet::builtin();
    assert!(set.len() >= 25, "{:?}", set.ids());
    for info in set.info() {
        assert!(
            info.source.as_deref().is_some_and(|s| !s.is_empty()),
            "{} has no source",
            info.id
        );
        assert_eq!(info.version.len(), 12);
    }
}
