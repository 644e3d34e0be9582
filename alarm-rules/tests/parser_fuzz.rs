//! Fuzz-style: the rule file parser never panics, whatever it is given.

use alarm_rules::RuleSet;
use proptest::prelude::*;

fn parse(text: &str) {
    let _ = RuleSet::parse(&[("fuzz.toml".to_string(), text.to_string())], false);
}

const KEYS: [&str; 40] = [
    "id",
    "kind",
    "description",
    "source",
    "confidence",
    "enabled",
    "select",
    "context",
    "on_delay_ms",
    "off_delay_ms",
    "high",
    "low",
    "deadband",
    "window_ms",
    "rise",
    "fall",
    "severity",
    "bad_quality",
    "out_of_range",
    "stuck_ms",
    "stuck_tolerance",
    "factor",
    "default_interval_ms",
    "active",
    "max_duration_ms",
    "escalate_to",
    "label",
    "mode",
    "zone_tag",
    "members",
    "a",
    "b",
    "within_ms",
    "raise",
    "clear",
    "inclusive",
    "warning",
    "min_level",
    "tighten",
    "quantity",
];
const VALUES: [&str; 24] = [
    "\"threshold\"",
    "\"state\"",
    "\"composite\"",
    "\"rate\"",
    "\"sensor_fault\"",
    "\"missing_data\"",
    "\"agent_offline\"",
    "\"alarm\"",
    "\"critical\"",
    "\"a_then_not_b\"",
    "\"all\"",
    "1",
    "-1",
    "0",
    "1.5",
    "nan",
    "inf",
    "true",
    "[]",
    "{}",
    "[{ severity = \"alarm\", raise = 1 }]",
    "{ quantity = \"ch4\" }",
    "9223372036854775807",
    "\"x.y\"",
];

fn structured() -> impl Strategy<Value = String> {
    let line = (0..KEYS.len(), 0..VALUES.len())
        .prop_map(|(k, v)| format!("{} = {}\n", KEYS[k], VALUES[v]));
    let header = prop_oneof![
        Just("[[rule]]\n".to_string()),
        Just("[[rule.context]]\n".to_string()),
        Just("[rule.select]\n".to_string()),
        Just("[[rule.high]]\n".to_string())
    ];
    prop::collection::vec(prop_oneof![3 => line, 1 => header], 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC*") {
        parse(&s);
    }

    #[test]
    fn rule_shaped_text_never_panics(s in structured()) {
        parse(&s);
    }

    #[test]
    fn mutated_builtin_files_never_panic(file in 0usize..alarm_rules::BUILTIN_FILES.len(), cut in any::<prop::sample::Index>(), junk in "\\PC{0,8}") {
        let text = alarm_rules::BUILTIN_FILES[file].1;
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) { at -= 1; }
        parse(&format!("{}{}{}", &text[..at], junk, &text[at..]));
    }
}
