//! Properties of the state machines, over generated reading sequences.

mod common;
use alarm_rules::{Engine, EngineConfig, RuleSet, Transition, TransitionKind};
use common::*;
use proptest::prelude::*;
use telemetry::{Category, Quality, Value};

fn threshold_rule(raise: f64, clear: f64, on_ms: u64, off_ms: u64) -> RuleSet {
    rules(&format!(
        "[[rule]]\nid = \"p.th\"\nkind = \"threshold\"\nselect = {{ quantity = \"co\" }}\non_delay_ms = {on_ms}\noff_delay_ms = {off_ms}\nhigh = [{{ severity = \"alarm\", raise = {raise:?}, clear = {clear:?} }}]\n"
    ))
}

fn engine(set: RuleSet) -> Engine {
    engine_with(set, Category::Hazchem, vec![spec("CO-1", "co", "ppm")])
}

/// (ms since t0, value) with strictly rising times.
fn series(len: usize, max_gap_ms: i64, lo: f64, hi: f64) -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec((1..=max_gap_ms, lo..hi), 1..len).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(dt, x)| {
                t += dt;
                (t, (x * 100.0).round() / 100.0)
            })
            .collect()
    })
}

fn run(e: &mut Engine, s: &[(i64, f64)]) -> Vec<Transition> {
    let mut out = Vec::new();
    for &(t, v) in s {
        out.extend(num(e, "CO-1", at_ms(t), v));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Inside the band between clear and raise nothing flaps: no transition while open, none while not.
    #[test]
    fn no_flapping_inside_the_band(raise in 5.0f64..50.0, width in 0.5f64..5.0, s in series(60, 5_000, 0.0, 1.0)) {
        let clear = raise - width;
        let band: Vec<(i64, f64)> = s.iter().map(|&(t, f)| (t + 1000, clear + f * (raise - clear) * 0.999)).collect();
        // Never raised: values in the band raise nothing.
        let mut e = engine(threshold_rule(raise, clear, 0, 0));
        prop_assert!(run(&mut e, &band).is_empty());
        // Raised: values in the band clear nothing.
        let mut e = engine(threshold_rule(raise, clear, 0, 0));
        prop_assert_eq!(num(&mut e, "CO-1", at_ms(0), raise).len(), 1);
        prop_assert!(run(&mut e, &band).is_empty());
        prop_assert_eq!(e.open_causes().len(), 1);
    }

    /// A clear happens only after the value has been past the clear value for the whole off-delay,
    /// and is dated exactly at the end of it.
    #[test]
    fn clear_only_past_the_clear_value_and_after_the_off_delay(s in series(80, 4_000, 0.0, 20.0), off in 0u64..10_000) {
        let (raise, clear) = (12.0, 8.0);
        let mut e = engine(threshold_rule(raise, clear, 0, off));
        let out = run(&mut e, &s);
        for tr in out.iter().filter(|t| t.kind == TransitionKind::Cleared) {
            let tc = (tr.at - t0()).num_milliseconds();
            // What the clear judged: readings before it, and one at its very time only if that
            // one is below the clear value too (a reading that arrives exactly when the
            // off-delay ends is judged after the timer fires: it may raise again at once).
            let judged = |&&(t, v): &&(i64, f64)| t < tc || (t == tc && v < clear);
            // The run of readings below the clear value that led to it.
            let start = s.iter().rev().filter(judged).take_while(|&&(_, v)| v < clear).last();
            let Some(&(t_start, _)) = start else { panic!("cleared at {tc} without a value below {clear}: {s:?}") };
            prop_assert_eq!(tc - t_start, off as i64, "cleared at {} after a run from {}", tc, t_start);
            prop_assert!(s.iter().filter(judged).filter(|&&(t, _)| t > t_start).all(|&(_, v)| v < clear));
        }
    }

    /// A raise is dated exactly on-delay after the start of the run that caused it, never later,
    /// and every run that lasted the on-delay raises.
    #[test]
    fn raise_never_delayed_beyond_the_on_delay(s in series(80, 4_000, 0.0, 20.0), on in 0u64..10_000) {
        let raise = 10.0;
        let mut e = engine(threshold_rule(raise, raise, on, 0));
        let out = run(&mut e, &s);
        let raised: Vec<i64> = out.iter().filter(|t| t.kind == TransitionKind::Raised).map(|t| (t.at - t0()).num_milliseconds()).collect();
        // Runs of readings >= raise: (start, time of the first reading after the run, or None).
        let mut expected = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i].1 >= raise {
                let start = s[i].0;
                let mut j = i;
                while j < s.len() && s[j].1 >= raise { j += 1; }
                let last_seen = if j < s.len() { s[j].0 } else { s[j - 1].0 };
                if last_seen >= start + on as i64 {
                    expected.push(start + on as i64);
                }
                i = j;
            } else {
                i += 1;
            }
        }
        prop_assert_eq!(raised, expected, "series {:?}", s);
    }

    /// Duplicates and replayed (older) readings never raise twice nor change the outcome.
    #[test]
    fn replays_never_double_raise(s in series(60, 3_000, 0.0, 20.0), picks in prop::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        let set = threshold_rule(12.0, 8.0, 0, 0);
        let mut e = engine(set.clone());
        let clean = run(&mut e, &s);
        let mut e = engine(set);
        let mut out = Vec::new();
        let mut k = 0;
        for (n, &(t, v)) in s.iter().enumerate() {
            out.extend(num(&mut e, "CO-1", at_ms(t), v));
            out.extend(num(&mut e, "CO-1", at_ms(t), v)); // duplicate
            // Replay some earlier reading.
            if let Some(ix) = picks.get(k) {
                let (rt, rv) = s[ix.index(n + 1)];
                out.extend(num(&mut e, "CO-1", at_ms(rt), rv));
                k += 1;
            }
        }
        prop_assert_eq!(&out, &clean);
        // Raised and cleared alternate.
        let mut open = false;
        for t in &out {
            match t.kind {
                TransitionKind::Raised => { prop_assert!(!open); open = true; }
                TransitionKind::Cleared => { prop_assert!(open); open = false; }
                _ => {}
            }
        }
    }

    /// Same input, same output (the whole pack, several points, ticks, quality).
    #[test]
    fn deterministic(steps in prop::collection::vec((0usize..4, 0i64..30_000, 0.0f64..3.0, 0u8..8), 1..80)) {
        let outs: Vec<(Vec<Transition>, String)> = (0..2).map(|_| {
            let mut pts = vec![with_tag(ch4("CH4-1", "working_face"), "zone", "z"), with_tag(ch4("CH4-2", "upper_corner"), "zone", "z"),
                with_tag(spec("FEED-1", "power_cut", "bool"), "zone", "z"), spec("CO-1", "co", "ppm")];
            for p in pts.iter_mut() { p.interval_ms = Some(10_000); }
            let mut e = Engine::new(RuleSet::builtin(), EngineConfig::default());
            e.set_site(&site(), alarm_rules::SiteContext { category: Some(Category::CoalMine), region: None, ..Default::default() });
            let mut out = Vec::new();
            e.set_catalogue(&site(), &catalogue(pts), t0(), &mut out);
            let mut clock = 0i64;
            for &(p, dt, v, q) in &steps {
                clock += dt;
                let name = ["CH4-1", "CH4-2", "FEED-1", "CO-1"][p];
                let value = if p == 2 { Value::Bool(v > 1.5) } else { Value::Number(v * if p == 3 { 20.0 } else { 1.0 }) };
                let quality = match q { 0 => Quality::Bad, 1 => Quality::Calibration, 2 => Quality::Uncertain, _ => Quality::Good };
                if q == 7 {
                    e.tick(at_ms(clock), &mut out);
                } else {
                    e.on_reading(&site(), &agent(), &reading_q(name, at_ms(clock), value, quality), at_ms(clock), &mut out);
                }
            }
            (out, format!("{:?}", e.open_causes()))
        }).collect();
        prop_assert_eq!(&outs[0], &outs[1]);
    }
}

/// The case proptest found: a reading above the raise value arrives exactly when the
/// off-delay of the run below the clear value ends. The clear fires at its time, then the
/// reading raises again.
#[test]
fn a_reading_exactly_at_the_end_of_the_off_delay_is_judged_after_the_clear() {
    let mut e = engine(threshold_rule(12.0, 8.0, 0, 3_707));
    let out = run(
        &mut e,
        &[
            (98_113, 17.57),
            (101_519, 7.72),
            (103_664, 5.89),
            (104_922, 6.25),
            (105_226, 13.41),
        ],
    );
    let kinds: Vec<(TransitionKind, i64)> = out
        .iter()
        .map(|t| (t.kind, (t.at - t0()).num_milliseconds()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (TransitionKind::Raised, 98_113),
            (TransitionKind::Cleared, 105_226),
            (TransitionKind::Raised, 105_226)
        ]
    );
}
