//! One evaluation = one reading of one point: find the point's rules, update each cause's
//! state, emit a transition when one is due. 100,000 points over 100 coal-mine sites.
//! Throughput is reported in readings per second (criterion's "elem/s").

use alarm_rules::{Engine, EngineConfig, RuleSet, SiteContext, Transition};
use chrono::{DateTime, Duration};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use telemetry::{
    AgentId, Catalogue, Category, PointId, PointSpec, Quantity, Reading, SiteId, Unit, Value,
};

const SITES: usize = 100;
const POINTS_PER_SITE: usize = 1_000;
const LOCATIONS: [&str; 11] = [
    "working_face",
    "upper_corner",
    "working_face_return",
    "intake_airway",
    "heading_face",
    "heading_return",
    "shearer",
    "drainage_roadway",
    "main_return",
    "coal_bunker",
    "substation",
];

struct Fixture {
    engine: Engine,
    /// One batch per site, as the gateway decodes them: (site, agent, readings).
    batches: Vec<(SiteId, AgentId, Vec<Reading>)>,
}

fn fixture(rules: RuleSet) -> Fixture {
    let t0 = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .unwrap()
        .to_utc();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut batches = Vec::with_capacity(SITES);
    let mut sink = Vec::new();
    for s in 0..SITES {
        let site = SiteId::new(format!("mine-{s:03}")).unwrap();
        let agent = AgentId::new(format!("mine-{s:03}-edge")).unwrap();
        engine.set_site(
            &site,
            SiteContext {
                category: Some(Category::CoalMine),
                region: None,
                ..Default::default()
            },
        );
        let mut points = Vec::with_capacity(POINTS_PER_SITE);
        for p in 0..POINTS_PER_SITE {
            let id = PointId::new(format!("CH4-{p:04}")).unwrap();
            let mut spec = PointSpec::new(id.clone(), Quantity::Ch4, Unit::PercentVol);
            spec.location = Some(LOCATIONS[p % LOCATIONS.len()].to_string());
            spec.interval_ms = Some(10_000);
            spec.range = Some([0.0, 40.0]);
            points.push(spec);
        }
        let cat = Catalogue {
            agent: agent.clone(),
            epoch: String::new(),
            site: None,
            points,
        };
        engine.set_catalogue(&site, &cat, t0, &mut sink);
        // The batch's readings are allocated together, like a decoded batch.
        let readings: Vec<Reading> = cat
            .points
            .iter()
            .map(|p| Reading::good(p.point.clone(), t0, Value::Number(0.2)))
            .collect();
        batches.push((site, agent, readings));
    }
    Fixture { engine, batches }
}

fn run(c: &mut Criterion, name: &str, rules: RuleSet) {
    let mut f = fixture(rules);
    let step = Duration::seconds(1);
    let mut round: usize = 0;
    let mut out: Vec<Transition> = Vec::with_capacity(1024);
    let mut transitions = 0usize;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements((SITES * POINTS_PER_SITE) as u64));
    group.sample_size(10);
    group.bench_function("100k_points_one_reading_each", |b| {
        b.iter(|| {
            round += 1;
            let mut i = 0usize;
            for (site, agent, readings) in f.batches.iter_mut() {
                for r in readings.iter_mut() {
                    r.ts += step;
                    // Mostly quiet; one point in 500 crosses its alarm level, and clears next round.
                    let v = if (i + round).is_multiple_of(500) {
                        1.2
                    } else {
                        0.2
                    };
                    i += 1;
                    r.value = Value::Number(v);
                    f.engine.on_reading(site, agent, r, r.ts, &mut out);
                }
            }
            transitions += out.len();
            black_box(&out);
            out.clear();
        })
    });
    group.finish();
    eprintln!(
        "{name}: {} bindings, {} transitions emitted over the run",
        f.engine.binding_count(),
        transitions
    );
}

fn threshold_only(c: &mut Criterion) {
    let files: Vec<(String, String)> = alarm_rules::BUILTIN_FILES
        .iter()
        .filter(|(n, _)| n.ends_with("coal.toml"))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    run(c, "threshold_rules", RuleSet::parse(&files, false).unwrap());
}

fn builtin_pack(c: &mut Criterion) {
    run(c, "builtin_pack", RuleSet::builtin());
}

criterion_group!(benches, threshold_only, builtin_pack);
criterion_main!(benches);
