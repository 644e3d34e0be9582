//! A reading batch decodes or is refused with a reason, whatever the bytes; every reading it
//! takes has a valid point id and a time within the limits, and every refusal has a code.
#![no_main]
use libfuzzer_sys::fuzz_target;
use telemetry::{decode_batch, parse_time, AgentId, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let now = parse_time("2026-11-28T10:00:00Z").unwrap();
    let limits = DecodeLimits::default();
    let agent = AgentId::new("edge").unwrap();
    for topic_agent in [None, Some(&agent)] {
        match decode_batch(data, topic_agent, now, &limits) {
            Ok(b) => {
                assert!(b.readings.len() + b.refused.len() <= limits.max_items);
                for r in &b.readings {
                    assert!(r.ts <= now + limits.max_future);
                    assert!(r.reason.as_ref().is_none_or(|s| s.chars().count() <= limits.max_reason_chars));
                }
                for r in &b.refused {
                    assert!(!r.error.code().is_empty());
                }
            }
            Err(e) => assert!(!e.code().is_empty() && !e.to_string().is_empty()),
        }
    }
});
