//! A catalogue (birth) decodes or is refused with a reason, whatever the bytes; every point
//! it keeps is within the text bounds and named once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use telemetry::{decode_catalogue, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    match decode_catalogue(data, None, &limits) {
        Ok(d) => {
            let mut seen = std::collections::HashSet::new();
            for p in &d.catalogue.points {
                assert!(seen.insert(p.point.clone()), "a point named twice was kept");
                assert!(p.tags.len() <= limits.max_tags);
                assert!(p.name.as_ref().is_none_or(|n| n.chars().count() <= limits.max_text_chars));
            }
        }
        Err(e) => assert!(!e.code().is_empty()),
    }
});
