//! The point catalogue an agent publishes at birth, and the agent status.

use crate::ids::{AgentId, PointId, RegionCode};
use crate::time::{serde_ts, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        /// Values the system does not know are kept as given (`Other`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($var,)*
            Other(String),
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$var => $s,)*
                    $name::Other(s) => s,
                }
            }
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => $name::$var,)*
                    other => $name::Other(other.to_string()),
                }
            }
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&String::deserialize(d)?))
            }
        }
    };
}

open_enum!(
    /// What a point measures.
    Quantity {
        Ch4 = "ch4", Co = "co", O2 = "o2", Co2 = "co2", H2s = "h2s", Lel = "lel", Toxic = "toxic",
        Temperature = "temperature", Pressure = "pressure", Level = "level", Flow = "flow",
        WindSpeed = "wind_speed", WaterLevel = "water_level", Rainfall = "rainfall",
        Displacement = "displacement", InterlockBypass = "interlock_bypass",
        InterlockTrip = "interlock_trip", PowerCut = "power_cut",
        OperationActive = "operation_active", Position = "position",
        VehicleAlarm = "vehicle_alarm", VehicleStatus = "vehicle_status",
        VehicleActiveSafety = "vehicle_active_safety",
        FanRunning = "fan_running", PowerOffCommand = "power_off_command",
    }
);

open_enum!(
    /// The unit of a point's values, as written in the contract.
    Unit {
        PercentVol = "%", Ppm = "ppm", PercentLel = "%LEL", Celsius = "°C", KiloPascal = "kPa",
        Metre = "m", MetrePerSecond = "m/s", MmPerHour = "mm/h", Millimetre = "mm",
        Bool = "bool", Wgs84 = "wgs84", Bits = "bits", CubicMetrePerHour = "m3/h",
        TonnePerHour = "t/h",
    }
);

open_enum!(
    /// The kind of a site.
    Category {
        CoalMine = "coal_mine", NonCoalMine = "non_coal_mine", OpenPit = "open_pit",
        Hazchem = "hazchem", Tailings = "tailings", Transport = "transport", OtherKind = "other",
    }
);

/// What kind of value a quantity carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Number,
    Bool,
    Position,
}

impl Quantity {
    pub fn value_kind(&self) -> ValueKind {
        match self {
            Quantity::InterlockBypass
            | Quantity::InterlockTrip
            | Quantity::PowerCut
            | Quantity::OperationActive
            | Quantity::FanRunning
            | Quantity::PowerOffCommand => ValueKind::Bool,
            Quantity::Position => ValueKind::Position,
            _ => ValueKind::Number,
        }
    }
}

/// A site as its birth (or the gateway's registry) describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// The site is on its city's emergency emission-reduction list for heavy-pollution
    /// weather (重污染天气应急减排清单): a heavy-pollution warning calls for its
    /// production-restriction check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emission_reduction_list: bool,
}

/// A point's own alarm settings, as its control system or point table has them (contract
/// 1.1): any of high-high, high, low, low-low (`{"hh": 90, "h": 80}`). Rules may take their
/// levels from them. An unknown key is refused.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Limits(pub BTreeMap<LimitKey, f64>);

/// One of the four settings of [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKey {
    Hh,
    H,
    L,
    Ll,
}

impl LimitKey {
    pub fn parse(s: &str) -> Option<LimitKey> {
        Some(match s {
            "hh" => LimitKey::Hh,
            "h" => LimitKey::H,
            "l" => LimitKey::L,
            "ll" => LimitKey::Ll,
            _ => return None,
        })
    }
}

impl Limits {
    pub fn get(&self, key: LimitKey) -> Option<f64> {
        self.0.get(&key).copied()
    }
}

/// One point of a catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSpec {
    pub point: PointId,
    pub quantity: Quantity,
    pub unit: Unit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The physical range; a value outside it is a sensor fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// How often a reading is expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// The gas, for `toxic` and `lel` points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The point's own alarm settings (contract 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

impl PointSpec {
    pub fn new(point: PointId, quantity: Quantity, unit: Unit) -> Self {
        PointSpec {
            point,
            quantity,
            unit,
            location: None,
            name: None,
            range: None,
            interval_ms: None,
            gas: None,
            tags: BTreeMap::new(),
            limits: None,
        }
    }
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// The point catalogue an agent publishes (retained) at birth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    pub agent: AgentId,
    #[serde(default)]
    pub epoch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteInfo>,
    pub points: Vec<PointSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Online,
    Offline,
}

/// Agent status (retained; the last will says `offline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatus {
    pub agent: AgentId,
    pub state: AgentState,
    #[serde(with = "serde_ts")]
    pub ts: Timestamp,
}
