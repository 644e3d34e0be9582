//! A CENC earthquake document parses or is refused, whatever the bytes; a parsed report goes
//! into a warning book without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = weather::WeatherConfig::default();
    if let Ok(report) = weather::parse_cenc(data, &config) {
        let mut book = weather::WarningBook::new(config);
        let now = chrono::DateTime::from_timestamp(1_785_000_000, 0).unwrap();
        let _ = book.apply_cenc(&report, now);
    }
});
