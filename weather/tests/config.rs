//! The configuration documented in README.md is the configuration the crate reads.

use weather::{WarningLevel, WeatherConfig};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    weather: WeatherConfig,
}

#[test]
fn the_readme_example_parses_and_validates() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let file: File = toml::from_str(&readme[start..end]).unwrap();
    file.weather.validate().unwrap();
    assert_eq!(file.weather.earthquake.steps.len(), 2);
    assert_eq!(file.weather.earthquake.steps[1].level, WarningLevel::Yellow);
    assert_eq!(
        file.weather.cap,
        WeatherConfig::default().cap,
        "the documented defaults are the defaults"
    );
    assert_eq!(file.weather.book, WeatherConfig::default().book);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<WeatherConfig>("default_validity = 3").is_err());
    assert!(toml::from_str::<WeatherConfig>("[cap]\nmax_bytes = 3").is_err());
    let c: WeatherConfig = toml::from_str("[earthquake]\nsteps = []").unwrap();
    assert!(c.validate().unwrap_err().contains("steps"));
    let c: WeatherConfig = toml::from_str(
        "[earthquake]\nsteps = [{min_magnitude = 5.0, radius_km = 1.0, level = \"red\"}, {min_magnitude = 4.0, radius_km = 1.0, level = \"red\"}]",
    )
    .unwrap();
    assert!(c.validate().unwrap_err().contains("ascend"));
    let c: WeatherConfig = toml::from_str("[cap]\nmax_document_bytes = 10").unwrap();
    assert!(c.validate().is_err());
}
