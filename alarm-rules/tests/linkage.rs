//! The weather linkage pack (`rules/weather.toml`) and the site-level rule kind, on the engine.

mod common;
use alarm_rules::{
    ActiveWarning, Cause, Engine, EngineConfig, RuleSet, SiteContext, Subject, TransitionKind,
    WarningLevel,
};
use common::*;
use telemetry::{Category, Severity, SiteId};

fn quake(id: &str, m: f64) -> ActiveWarning {
    ActiveWarning {
        id: id.to_string(),
        kind: "earthquake".to_string(),
        level: WarningLevel::Blue,
        magnitude: Some(m),
    }
}

fn warning(id: &str, kind: &str, level: WarningLevel) -> ActiveWarning {
    ActiveWarning {
        id: id.to_string(),
        kind: kind.to_string(),
        level,
        magnitude: None,
    }
}

fn sid(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

fn with_sites(sites: &[(&str, Category)]) -> Engine {
    let mut e = Engine::new(RuleSet::builtin(), EngineConfig::default());
    for (s, c) in sites {
        e.set_site(
            &sid(s),
            SiteContext {
                category: Some(c.clone()),
                region: None,
                ..Default::default()
            },
        );
    }
    e
}

fn warn(
    e: &mut Engine,
    site: &str,
    w: Vec<ActiveWarning>,
    secs: i64,
) -> Vec<alarm_rules::Transition> {
    let mut out = Vec::new();
    e.set_warnings(&sid(site), w, at(secs), &mut out);
    out
}

fn site_cause(site: &str) -> Cause {
    Cause {
        rule: "quake.inspection".into(),
        site: sid(site),
        subject: Subject::Zone {
            zone: "site".into(),
        },
    }
}

#[test]
fn a_quake_of_magnitude_4_raises_one_inspection_per_site_and_its_end_clears_it() {
    let mut e = with_sites(&[
        ("tail-01", Category::Tailings),
        ("mine-01", Category::CoalMine),
        ("chem-01", Category::Hazchem),
    ]);
    // A tailings site with many points still gets one incident.
    let mut out = Vec::new();
    e.set_catalogue(
        &sid("tail-01"),
        &catalogue(vec![
            spec("WL-1", "water_level", "m"),
            spec("WL-2", "water_level", "m"),
            spec("D-1", "displacement", "mm"),
        ]),
        t0(),
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");

    let out = warn(&mut e, "tail-01", vec![quake("cenc/q1", 4.6)], 10);
    assert_eq!(out.len(), 1, "{out:#?}");
    let t = &out[0];
    assert_eq!(t.cause, site_cause("tail-01"));
    assert_eq!(
        (t.kind, t.severity),
        (TransitionKind::Raised, Severity::Alarm)
    );
    assert_eq!(t.warnings, vec!["cenc/q1".to_string()]);
    assert_eq!(t.value, Some(telemetry::Value::Number(4.6)));
    assert_eq!(t.threshold, Some(4.0));
    assert_eq!(t.point, None);
    assert_eq!(t.at, at(10));
    assert!(
        text(t).contains("inspection") && text(t).contains("M4.6"),
        "{}",
        text(t)
    );

    let out = warn(&mut e, "mine-01", vec![quake("cenc/q1", 4.6)], 10);
    assert_eq!(
        kinds(&out),
        vec![(
            "quake.inspection".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    assert!(
        warn(&mut e, "chem-01", vec![quake("cenc/q1", 4.6)], 10).is_empty(),
        "hazchem is not selected"
    );

    // A second quake while open: still one incident (no new raise).
    let out = warn(
        &mut e,
        "tail-01",
        vec![quake("cenc/q1", 4.6), quake("cenc/q2", 4.1)],
        20,
    );
    assert!(out.is_empty(), "{out:#?}");
    // The warnings end: cleared.
    let out = warn(&mut e, "tail-01", vec![], 30);
    assert_eq!(
        kinds(&out),
        vec![(
            "quake.inspection".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
    assert_eq!(
        e.open_causes(),
        vec![(site_cause("mine-01"), Severity::Alarm)]
    );
}

#[test]
fn below_magnitude_4_nothing_and_a_strong_quake_is_critical() {
    let mut e = with_sites(&[("tail-01", Category::Tailings)]);
    assert!(warn(&mut e, "tail-01", vec![quake("cenc/small", 3.9)], 10).is_empty());
    let out = warn(&mut e, "tail-01", vec![quake("cenc/big", 6.1)], 20);
    assert_eq!(
        kinds(&out),
        vec![(
            "quake.inspection".into(),
            TransitionKind::Raised,
            Severity::Critical
        )]
    );
    assert_eq!(out[0].threshold, Some(6.0));
    // Other warning kinds do not call for it.
    let mut e = with_sites(&[("tail-02", Category::Tailings)]);
    assert!(warn(
        &mut e,
        "tail-02",
        vec![warning("w", "rainstorm", WarningLevel::Red)],
        10
    )
    .is_empty());
}

#[test]
fn a_restored_inspection_is_not_raised_twice_and_its_clear_is_not_lost() {
    let mut e = with_sites(&[("tail-01", Category::Tailings)]);
    e.restore_open(&site_cause("tail-01"), Severity::Alarm);
    assert!(warn(&mut e, "tail-01", vec![quake("cenc/q1", 4.6)], 10).is_empty());
    let out = warn(&mut e, "tail-01", vec![], 20);
    assert_eq!(
        kinds(&out),
        vec![(
            "quake.inspection".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
}

#[test]
fn a_site_rule_removed_by_reload_clears_its_open_cause() {
    let mut e = with_sites(&[("tail-01", Category::Tailings)]);
    assert_eq!(
        warn(&mut e, "tail-01", vec![quake("cenc/q1", 5.0)], 10).len(),
        1
    );
    let off = RuleSet::parse(
        &[(
            "site.toml".into(),
            "[[rule]]\nid = \"quake.inspection\"\nkind = \"site\"\nseverity = \"alarm\"\nenabled = false\n[[rule.context]]\nwarning = \"earthquake\"\nonly = true\n".into(),
        )],
        true,
    )
    .unwrap();
    let mut out = Vec::new();
    e.reload(off, at(20), &mut out);
    assert_eq!(
        kinds(&out),
        vec![(
            "quake.inspection".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
}

#[test]
fn site_rules_are_validated() {
    let err = |text: &str| {
        RuleSet::parse(&[("s.toml".into(), text.into())], false)
            .unwrap_err()
            .to_string()
    };
    let e = err("[[rule]]\nid = \"s\"\nkind = \"site\"\nseverity = \"alarm\"\n");
    assert!(
        e.contains("field context") && e.contains("only = true"),
        "{e}"
    );
    let e = err("[[rule]]\nid = \"s\"\nkind = \"site\"\nseverity = \"alarm\"\nselect = { quantity = \"ch4\" }\n[[rule.context]]\nwarning = \"earthquake\"\nonly = true\n");
    assert!(e.contains("field select"), "{e}");
    let e = err("[[rule]]\nid = \"s\"\nkind = \"site\"\nseverity = \"alarm\"\nhigh = []\n[[rule.context]]\nwarning = \"earthquake\"\nonly = true\n");
    assert!(e.contains("field high"), "{e}");
}

#[test]
fn lightning_makes_loading_at_a_hazchem_site_an_incident() {
    let loading = with_tag(
        spec("LOAD-1", "operation_active", "bool"),
        "operation",
        "loading",
    );
    let hot = with_tag(
        spec("HOT-1", "operation_active", "bool"),
        "operation",
        "hot_work",
    );
    let mut e = engine_with(RuleSet::builtin(), Category::Hazchem, vec![loading, hot]);
    assert!(
        boolean(&mut e, "LOAD-1", at(0), true).is_empty(),
        "no warning: loading is normal"
    );
    assert!(boolean(&mut e, "HOT-1", at(0), true).is_empty());
    // Blue is below yellow.
    assert!(warn(
        &mut e,
        "mine-01",
        vec![warning("l0", "lightning", WarningLevel::Blue)],
        5
    )
    .is_empty());
    let out = warn(
        &mut e,
        "mine-01",
        vec![warning("l1", "lightning", WarningLevel::Yellow)],
        10,
    );
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.loading.lightning".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    assert_eq!(out[0].warnings, vec!["l1".to_string()]);
    assert_eq!(out[0].point, Some(pid("LOAD-1")));
    // Loading stops: cleared; starts again under the warning: raised again.
    let out = boolean(&mut e, "LOAD-1", at(20), false);
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.loading.lightning".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
    let out = boolean(&mut e, "LOAD-1", at(30), true);
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.loading.lightning".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    // The warning ends: cleared at once.
    let out = warn(&mut e, "mine-01", vec![], 40);
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.loading.lightning".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
}

#[test]
fn interlocks_apply_at_every_kind_of_site() {
    for cat in [
        Category::CoalMine,
        Category::Hazchem,
        Category::Tailings,
        Category::NonCoalMine,
    ] {
        let mut e = engine_with(
            RuleSet::builtin(),
            cat.clone(),
            vec![
                spec("IL-1", "interlock_bypass", "bool"),
                spec("TR-1", "interlock_trip", "bool"),
            ],
        );
        let out = boolean(&mut e, "IL-1", at(0), true);
        assert_eq!(
            kinds(&out),
            vec![(
                "interlock.bypass".into(),
                TransitionKind::Raised,
                Severity::Warning
            )],
            "{cat:?}"
        );
        let out = boolean(&mut e, "TR-1", at(0), true);
        assert_eq!(
            kinds(&out),
            vec![(
                "interlock.trip".into(),
                TransitionKind::Raised,
                Severity::Alarm
            )],
            "{cat:?}"
        );
    }
}

/// The message as people read it, in English (the language these tests pin).
fn text(t: &alarm_rules::Transition) -> String {
    presentation::message_text(&t.message, presentation::Language::En)
}
