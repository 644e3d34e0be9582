//! Shared helpers of the weather tests.
#![allow(dead_code)]

use std::path::PathBuf;

use telemetry::{parse_time, RegionCode, Timestamp};
use weather::{parse_cap, CapAlert, SiteLocation, WeatherConfig};

/// A time from RFC 3339 text.
pub fn t(s: &str) -> Timestamp {
    parse_time(s).unwrap()
}

/// The upstream CAP samples in `shared/reference/cap` (beside the repository).
pub fn reference_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/cap");
    assert!(
        dir.is_dir(),
        "the reference CAP files are missing: {} (shared/ must lie beside the repository)",
        dir.display()
    );
    dir
}

pub fn reference(name: &str) -> Vec<u8> {
    std::fs::read(reference_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The CAP documents written for these tests, in `tests/data`.
pub fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn alert(bytes: &[u8]) -> CapAlert {
    parse_cap(bytes, &WeatherConfig::default().cap).unwrap_or_else(|e| panic!("refused: {e}"))
}

pub fn site_in(region: &str) -> SiteLocation {
    SiteLocation {
        region: Some(RegionCode::new(region).unwrap()),
        lat: None,
        lon: None,
    }
}

pub fn site_at(lat: f64, lon: f64) -> SiteLocation {
    SiteLocation {
        region: None,
        lat: Some(lat),
        lon: Some(lon),
    }
}

/// A clock the test moves by hand; the library only ever sees the times it hands out.
pub struct TestClock(Timestamp);

impl TestClock {
    pub fn at(s: &str) -> Self {
        TestClock(t(s))
    }
    pub fn now(&self) -> Timestamp {
        self.0
    }
    pub fn set(&mut self, s: &str) -> Timestamp {
        let next = t(s);
        assert!(next >= self.0, "the test clock only moves forward");
        self.0 = next;
        next
    }
}
