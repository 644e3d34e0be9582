//! The gateway's core end to end: any topic and payload is judged, refused with a dead letter,
//! or ignored; it never fails and never panics, and the core takes a good reading after it.
//! The store is an in-memory SQLite, the clock a manual one.
#![no_main]
use gateway::clock::ManualClock;
use gateway::core::Core;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the kind of topic, the rest is the payload.
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let topic = match kind % 6 {
        0 => "hrs/v1/sites/mine-01/edge/readings".to_string(),
        1 => "hrs/v1/sites/mine-01/edge/birth".to_string(),
        2 => "hrs/v1/sites/mine-01/edge/status".to_string(),
        3 => "hrs/v1/weather/cap".to_string(),
        4 => "hrs/v1/weather/cenc".to_string(),
        _ => String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        let mut core = Core::start(
            alarm_rules::Engine::new(
                alarm_rules::RuleSet::builtin(),
                alarm_rules::EngineConfig::default(),
            ),
            gateway::store::Store::open("sqlite::memory:").await.unwrap(),
            Arc::new(ManualClock::new(now)),
            telemetry::TopicScheme::new("hrs/v1"),
            gateway::core::config::CoreSettings::default(),
            gateway::metrics::Metrics::new(),
        )
        .await
        .unwrap();
        let birth = br#"{"agent":"edge","points":[{"point":"CH4-101","quantity":"ch4","unit":"%","location":"working_face"}]}"#;
        core.handle_message("hrs/v1/sites/mine-01/edge/birth", birth)
            .await
            .unwrap();
        core.handle_message(&topic, payload)
            .await
            .expect("the core never fails on a message");
        let good = br#"{"agent":"edge","epoch":"fuzz-good","seq":1,"readings":[{"point":"CH4-101","ts":"2026-11-28T09:59:59Z","value":1.3}]}"#;
        core.handle_message("hrs/v1/sites/mine-01/edge/readings", good)
            .await
            .expect("the core takes a good reading after any message");
        core.tick().await.expect("timers after any message");
    });
});
