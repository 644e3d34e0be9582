#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod book;
pub mod cap;
pub mod cenc;
pub mod encoding;
pub mod geo;
pub mod signals;
pub mod warning;

pub use book::{Applied, BookError, Change, Outcome, WarningBook};
pub use cap::{
    parse_cap, AlertKey, AlertRef, CapAlert, CapArea, CapError, CapInfo, CapLimits, CapSeverity,
    CapVersion, MsgType, NamedValue, Scope, Status,
};
pub use cenc::{parse_cenc, CencError, CencReport, Earthquake, RefusedQuake};
pub use geo::{haversine_km, Circle, LatLon, Polygon};
pub use signals::{kind_label, KNOWN_KINDS};
pub use warning::{
    affects, warnings_from_cap, BookLimits, EarthquakeConfig, LevelOf, MagnitudeStep, SiteLocation,
    Warning, WarningLevel, WarningSource, WeatherConfig,
};
