//! The rule file parser never panics, whatever the text: it parses or refuses with a reason.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let files = [("fuzz.toml".to_string(), text.to_string())];
        match alarm_rules::RuleSet::parse(&files, false) {
            Ok(set) => {
                // A parsed set is usable: every rule has a version.
                for id in set.ids() {
                    assert!(set.version(&id).is_some());
                }
            }
            Err(e) => {
                // A refusal names the file.
                assert!(e.to_string().contains("fuzz.toml"), "{e}");
            }
        }
    }
});
