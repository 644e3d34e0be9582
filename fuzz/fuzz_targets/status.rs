//! An agent status (or last will) decodes or is refused, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use telemetry::{decode_status, AgentId, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let agent = AgentId::new("edge").unwrap();
    match decode_status(data, Some(&agent), &DecodeLimits::default()) {
        Ok(s) => assert_eq!(s.agent, agent),
        Err(e) => assert!(!e.code().is_empty()),
    }
});
