//! A CAP document parses or is refused with a reason, whatever the bytes (any encoding, DTDs,
//! entities, deep nesting); a parsed alert goes into a warning book without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = weather::WeatherConfig::default();
    if let Ok(alert) = weather::parse_cap(data, &config.cap) {
        let mut book = weather::WarningBook::new(config);
        let now = chrono::DateTime::from_timestamp(1_785_000_000, 0).unwrap();
        let _ = book.apply(&alert, now);
        let _ = book.advance(now + chrono::Duration::days(2));
    }
});
