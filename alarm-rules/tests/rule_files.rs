//! The rule file format: README examples load, errors name file, rule and field, versions.

use alarm_rules::{RuleError, RuleSet};

fn parse(text: &str) -> Result<RuleSet, RuleError> {
    RuleSet::parse(&[("site.toml".to_string(), text.to_string())], false)
}

fn field_err(text: &str) -> (String, String) {
    match parse(text) {
        Err(RuleError::Field {
            file, rule, field, ..
        }) => {
            assert_eq!(file, "site.toml");
            (rule, field)
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn every_readme_example_loads() {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, "```toml") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert!(blocks.len() >= 5);
    let files: Vec<(String, String)> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("readme-{i}.toml"), b.clone()))
        .collect();
    let set = RuleSet::parse(&files, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.len() > RuleSet::builtin().len() + 10);
}

#[test]
fn errors_name_the_file_the_rule_and_the_field() {
    let (rule, field) = field_err(
        r#"
[[rule]]
id = "x.co"
kind = "threshold"
high = [{ severity = "alarm", raise = 24.0, colour = "red" }]
"#,
    );
    assert_eq!((rule.as_str(), field.as_str()), ("x.co", "high[0].colour"));
    let (rule, field) = field_err(
        "[[rule]]\nid = \"x.co\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\" }]\n",
    );
    assert_eq!((rule.as_str(), field.as_str()), ("x.co", "high[0].raise"));
    let (_, field) = field_err(
        "[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"loud\", raise = 1 }]\n",
    );
    assert_eq!(field, "high[0].severity");
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"threshold\"\nselect = { quantity = \"co\", colour = 1 }\nhigh = [{ severity = \"alarm\", raise = 1 }]\n");
    assert_eq!(field, "select.colour");
    let (_, field) =
        field_err("[[rule]]\nid = \"x\"\nkind = \"state\"\nseverity = \"alarm\"\nhigh = []\n");
    assert_eq!(field, "high", "a field of another kind is refused by name");
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"magic\"\n");
    assert_eq!(field, "kind");
    let (rule, field) = field_err("[[rule]]\nkind = \"threshold\"\n");
    assert_eq!((rule.as_str(), field.as_str()), ("#1", "id"));
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"critical\", raise = 2 }, { severity = \"alarm\", raise = 3 }]\n");
    assert_eq!(field, "high[1].severity");
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\", raise = 2, clear = 3 }]\n");
    assert_eq!(field, "high[0].clear");
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"threshold\"\nconfidence = \"maybe\"\nhigh = [{ severity = \"alarm\", raise = 2 }]\n");
    assert_eq!(field, "confidence");
    let (_, field) = field_err("[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\", raise = 2 }]\n[[rule.context]]\nwarning = \"rainstorm\"\nmin_level = \"purple\"\nonly = true\n");
    assert_eq!(field, "context[0].min_level");
    let msg =
        parse("[[rule]]\nid = \"x.co\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\" }]\n")
            .unwrap_err()
            .to_string();
    assert_eq!(msg, "site.toml: rule x.co: field high[0].raise: missing");
    assert!(matches!(parse("[[rule]\n"), Err(RuleError::Syntax { .. })));
    assert!(matches!(
        parse("title = \"x\"\n"),
        Err(RuleError::File { .. })
    ));
}

#[test]
fn duplicates_replacement_and_disabling() {
    let a = ("a.toml".to_string(), "[[rule]]\nid = \"coal.co\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\", raise = 30 }]\n".to_string());
    let b = ("b.toml".to_string(), a.1.clone());
    match RuleSet::parse(&[a.clone(), b], true) {
        Err(RuleError::Duplicate {
            file,
            rule,
            first_file,
        }) => assert_eq!(
            (file.as_str(), rule.as_str(), first_file.as_str()),
            ("b.toml", "coal.co", "a.toml")
        ),
        other => panic!("{other:?}"),
    }
    let builtin = RuleSet::builtin();
    let set = RuleSet::parse(&[a], true).unwrap();
    assert_eq!(set.len(), builtin.len());
    assert_ne!(set.version("coal.co"), builtin.version("coal.co"));
    let off = (
        "off.toml".to_string(),
        "[[rule]]\nid = \"sensor.fault\"\nkind = \"sensor_fault\"\nenabled = false\n".to_string(),
    );
    let set = RuleSet::parse(&[off], true).unwrap();
    assert_eq!(set.len(), builtin.len() - 1);
    assert!(!set.ids().contains(&"sensor.fault".to_string()));
    assert_eq!(RuleSet::parse(&[], false).unwrap().len(), 0);
}

#[test]
fn versions_are_stable_and_follow_the_content() {
    let text = "[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\", raise = 2 }]\n";
    let v1 = parse(text).unwrap().version("x").unwrap().to_string();
    // Formatting, order of keys, integer vs float do not matter: the canonical form does.
    let same = "[[rule]]\nkind = \"threshold\"\nid = \"x\"\n\n  high = [ { raise = 2.0, severity = \"alarm\" } ]\n";
    assert_eq!(parse(same).unwrap().version("x").unwrap(), v1);
    let other = "[[rule]]\nid = \"x\"\nkind = \"threshold\"\nhigh = [{ severity = \"alarm\", raise = 2.1 }]\n";
    assert_ne!(parse(other).unwrap().version("x").unwrap(), v1);
    assert_eq!(v1.len(), 12);
    assert!(v1.bytes().all(|c| c.is_ascii_hexdigit()));
    // The built-in pack's versions do not change from one build to the next by accident.
    let a = RuleSet::builtin();
    let b = RuleSet::builtin();
    assert_eq!(a.info(), b.info());
}

#[test]
fn the_pack_marks_what_is_unconfirmed() {
    let set = RuleSet::builtin();
    let conf = |id: &str| {
        set.info()
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
            .confidence
    };
    for id in [
        "coal.ch4.coal_bunker",
        "coal.ch4.substation",
        "coal.ch4.drainage_roadway",
        "coal.ch4.power_off_failure",
        "hazchem.toxic.h2s",
        "hazchem.toxic.benzene",
    ] {
        assert_eq!(conf(id), "unconfirmed", "{id}");
    }
    assert_eq!(conf("coal.ch4.working_face"), "secondary");
    for gas in ["h2s", "co", "cl2", "nh3", "hcn", "benzene"] {
        assert!(
            set.version(&format!("hazchem.toxic.{gas}")).is_some(),
            "{gas}"
        );
    }
}

#[test]
fn the_fields_of_issue_25_are_checked() {
    let th = "[[rule]]\nid = \"x\"\nkind = \"threshold\"\n";
    let lvl = "high = [{ severity = \"alarm\", limit = \"h\" }]\n";
    let ctx = "[[rule.context]]\nwarning = \"high_temperature\"\n";
    let comp = "[[rule]]\nid = \"x\"\nkind = \"composite\"\nseverity = \"alarm\"\n";
    let pair = "a = { quantity = \"ch4\" }\nb = { quantity = \"power_cut\" }\n";
    let refused: Vec<(String, &str)> = vec![
        // A level from a point's limit: the side's keys only, no clear.
        (
            format!("{th}high = [{{ severity = \"alarm\", limit = \"ll\" }}]\n"),
            "high[0].limit",
        ),
        (
            format!("{th}high = [{{ severity = \"alarm\", limit = \"h\", clear = 3 }}]\n"),
            "high[0].clear",
        ),
        // Tighten by a distance above 0, not with raise or clear.
        (
            format!("{th}{lvl}{ctx}tighten = [{{ level = \"alarm\", by = 5.0, raise = 3 }}]\n"),
            "context[0].tighten[0].by",
        ),
        (
            format!("{th}{lvl}{ctx}tighten = [{{ level = \"alarm\", by = -1.0 }}]\n"),
            "context[0].tighten[0].by",
        ),
        // a_without_b members select points only, and it has no allowance.
        (
            format!("{comp}mode = \"a_without_b\"\na = {{ quantity = \"ch4\", above = 1.0 }}\nb = {{ quantity = \"power_cut\" }}\n"),
            "a.above",
        ),
        (
            format!("{comp}mode = \"a_without_b\"\n{pair}within_ms = 5\n"),
            "within_ms",
        ),
        // Repeats of a state: both keys together.
        (
            "[[rule]]\nid = \"x\"\nkind = \"state\"\nseverity = \"alarm\"\nmax_starts = 2\n".into(),
            "max_starts",
        ),
        // Selectors and members.
        (
            format!("{th}select = {{ emission_reduction_list = \"yes\" }}\n{lvl}"),
            "select.emission_reduction_list",
        ),
        (
            format!("{comp}mode = \"all\"\nmembers = [{{ quantity = \"flow\", below_limit = \"low\" }}]\n"),
            "members[0].below_limit",
        ),
    ];
    for (text, want) in refused {
        assert_eq!(field_err(&text).1, want, "{text}");
    }
    for ok in [
        format!("{th}{lvl}low = [{{ severity = \"alarm\", limit = \"l\" }}]\n"),
        format!("{th}high = [{{ severity = \"alarm\", limit = \"h\" }}, {{ severity = \"critical\", limit = \"hh\", raise = 9 }}]\n"),
        format!("{comp}mode = \"a_without_b\"\n{pair}"),
        format!("{th}select = {{ without_tags = \"process\", emission_reduction_list = true }}\n{lvl}{ctx}tighten = [{{ level = \"alarm\", by = 5.0 }}]\n"),
    ] {
        assert!(parse(&ok).is_ok(), "{ok}");
    }
}
