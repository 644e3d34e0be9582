//! From decoded JT/T 808 messages to readings and catalogue points.
//!
//! Four points per vehicle (terminal `13800000001`):
//!
//! | point | quantity | unit | value |
//! | --- | --- | --- | --- |
//! | `V13800000001` | `position` | `wgs84` | `{"lat","lon","speed_kmh","heading","alt_m"}` |
//! | `V13800000001.alarm` | `vehicle_alarm` | `bits` | the alarm word (JT/T 808 table 24), a number |
//! | `V13800000001.status` | `vehicle_status` | `bits` | the status word (table 25), a number |
//! | `V13800000001.safety` | `vehicle_active_safety` | `bits` | the active-safety word (below), only on reports that carry 0x64-0x67 items |
//!
//! The active-safety word packs the T/JSATL 12-2017 items of one report that started or go on
//! (flag not 2 "end"): bits 0-7 the ADAS alarm type, 8-9 its level; 10-17 the DSM alarm type,
//! 18-19 its level; 20-27 the blind-spot alarm type; 28-34 the OR of the tyre alarm bits 0-6
//! over every tyre. A report whose items all end gives 0.

use super::config::{Jt808Config, VehicleClass};
use ::jt808::{ActiveSafetyKind, Location};
use std::collections::{BTreeMap, HashMap};
use telemetry::{PointId, PointSpec, Position, Quality, Quantity, Reading, Timestamp, Value};

pub const QUANTITY_ALARM: &str = "vehicle_alarm";
pub const QUANTITY_STATUS: &str = "vehicle_status";
pub const QUANTITY_SAFETY: &str = "vehicle_active_safety";
pub const UNIT_BITS: &str = "bits";

/// The point ids of a vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehiclePoints {
    pub position: PointId,
    pub alarm: PointId,
    pub status: PointId,
    pub safety: PointId,
}

impl VehiclePoints {
    /// `terminal` is 1..20 digits, so the ids are within the point-id pattern.
    pub fn of(terminal: &str) -> VehiclePoints {
        let id = |s: String| PointId::new(s).expect("V + up to 20 digits is a point id");
        VehiclePoints {
            position: id(format!("V{terminal}")),
            alarm: id(format!("V{terminal}.alarm")),
            status: id(format!("V{terminal}.status")),
            safety: id(format!("V{terminal}.safety")),
        }
    }
}

/// The active-safety word of a report, if it carries active-safety items.
pub fn safety_word(loc: &Location) -> Option<u64> {
    let mut any = false;
    let mut w = 0u64;
    for a in loc.active_safety() {
        any = true;
        if a.flag == 2 {
            continue;
        }
        let level = u64::from(a.level & 0x03);
        let t = u64::from(a.event_type);
        match a.kind {
            ActiveSafetyKind::Adas => w = (w & !0x3FF) | t | (level << 8),
            ActiveSafetyKind::Dsm => w = (w & !(0x3FF << 10)) | (t << 10) | (level << 18),
            ActiveSafetyKind::BlindSpot => w = (w & !(0xFF << 20)) | (t << 20),
            ActiveSafetyKind::Tyre => {
                for tyre in &a.tyres {
                    w |= u64::from(tyre.alarm_type & 0x7F) << 28;
                }
            }
        }
    }
    any.then_some(w)
}

/// The readings of one location report of `terminal`, stamped with the terminal's time
/// (Beijing time to UTC); `now` (the agent's clock) only when the terminal's time is not a
/// valid time, and then the position is `uncertain` and says so.
pub fn location_readings(terminal: &str, loc: &Location, now: Timestamp) -> Vec<Reading> {
    let p = VehiclePoints::of(terminal);
    let (ts, time_ok) = match loc.time.utc() {
        Some(t) => (t, true),
        None => (now, false),
    };
    let mut out = Vec::with_capacity(4);
    if loc.lat_e6 > 90_000_000 || loc.lon_e6 > 180_000_000 {
        out.push(Reading::bad(
            p.position,
            ts,
            format!(
                "terminal sent latitude {} and longitude {} (millionths of a degree), outside the earth",
                loc.lat_e6, loc.lon_e6
            ),
        ));
    } else {
        let mut r = Reading::good(
            p.position,
            ts,
            Value::Position(Position {
                lat: loc.lat(),
                lon: loc.lon(),
                speed_kmh: Some(loc.speed_kmh()),
                heading: Some(f64::from(loc.heading)),
                alt_m: Some(f64::from(loc.altitude_m)),
            }),
        );
        if !time_ok {
            r.quality = Quality::Uncertain;
            r.reason = Some(format!(
                "terminal time {} is not a time; arrival time used",
                loc.time
            ));
        } else if !loc.positioned() {
            r.quality = Quality::Uncertain;
            r.reason = Some("no GNSS fix (status bit 1 clear)".into());
        }
        out.push(r);
    }
    out.push(Reading::good(
        p.alarm,
        ts,
        Value::Number(f64::from(loc.alarm)),
    ));
    out.push(Reading::good(
        p.status,
        ts,
        Value::Number(f64::from(loc.status)),
    ));
    if let Some(w) = safety_word(loc) {
        out.push(Reading::good(p.safety, ts, Value::Number(w as f64)));
    }
    out
}

/// A vehicle as the catalogue names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub terminal: String,
    pub plate: Option<String>,
    pub class: VehicleClass,
    pub driver: Option<(String, String)>,
}

impl Vehicle {
    /// Its four points.
    pub fn points(&self, interval_ms: u64) -> [PointSpec; 4] {
        let ids = VehiclePoints::of(&self.terminal);
        let label = self
            .plate
            .clone()
            .unwrap_or_else(|| format!("terminal {}", self.terminal));
        let mut tags = BTreeMap::new();
        tags.insert("vehicle_class".to_string(), self.class.as_str().to_string());
        tags.insert("terminal".to_string(), self.terminal.clone());
        let spec = |point: PointId, q: &str, unit: &str, name: String, interval: Option<u64>| {
            let mut s = PointSpec::new(point, Quantity::parse(q), telemetry::Unit::parse(unit));
            s.name = Some(name);
            s.interval_ms = interval;
            s.tags = tags.clone();
            s
        };
        let mut position = spec(
            ids.position,
            "position",
            "wgs84",
            label.clone(),
            Some(interval_ms),
        );
        if let Some(p) = &self.plate {
            position.tags.insert("plate".into(), p.clone());
        }
        if let Some((name, licence)) = &self.driver {
            position.tags.insert("driver".into(), name.clone());
            position
                .tags
                .insert("driver_license".into(), licence.clone());
        }
        [
            position,
            spec(
                ids.alarm,
                QUANTITY_ALARM,
                UNIT_BITS,
                format!("{label} alarm word"),
                Some(interval_ms),
            ),
            spec(
                ids.status,
                QUANTITY_STATUS,
                UNIT_BITS,
                format!("{label} status word"),
                Some(interval_ms),
            ),
            spec(
                ids.safety,
                QUANTITY_SAFETY,
                UNIT_BITS,
                format!("{label} active safety"),
                None,
            ),
        ]
    }
}

/// Which birth (shard) a terminal belongs to: FNV-1a of its number, stable across restarts
/// and builds.
pub fn shard_of(terminal: &str, shards: u16) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in terminal.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as usize
}

/// The vehicles of one listener that its births name: the listed ones and every terminal that
/// registered (persisted), at most `max_vehicles_per_shard` per birth (listed first).
#[derive(Debug)]
pub struct Fleet {
    listed: HashMap<String, (Option<String>, Option<VehicleClass>)>,
    default_class: VehicleClass,
    shards: u16,
    max_per_shard: usize,
    interval_ms: u64,
    /// Catalogued vehicles per shard, by terminal (ordered: the birth is stable).
    catalogued: Vec<BTreeMap<String, Vehicle>>,
    /// Terminals taken without a birth (their shard was full).
    uncatalogued: std::collections::HashSet<String>,
}

/// What [`Fleet::note`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The birth of this shard changed.
    Changed(usize),
    Unchanged,
    /// The shard is full: the vehicle has no birth.
    Uncatalogued,
}

impl Fleet {
    pub fn new(cfg: &Jt808Config) -> Fleet {
        let listed = cfg
            .vehicles
            .iter()
            .map(|v| {
                (
                    super::config::normalise_terminal(&v.terminal),
                    (v.plate.clone(), v.class),
                )
            })
            .collect::<HashMap<_, _>>();
        let mut f = Fleet {
            listed,
            default_class: cfg.default_class,
            shards: cfg.shards.max(1),
            max_per_shard: cfg.max_vehicles_per_shard,
            interval_ms: cfg.report_interval_ms,
            catalogued: vec![BTreeMap::new(); usize::from(cfg.shards.max(1))],
            uncatalogued: Default::default(),
        };
        let mut listed: Vec<String> = f.listed.keys().cloned().collect();
        listed.sort();
        for t in listed {
            f.note(&t, None, None);
        }
        f
    }

    /// The vehicle `terminal` is: its listing, else the default class; `plate` from its
    /// registration when the listing has none.
    pub fn vehicle(
        &self,
        terminal: &str,
        plate: Option<&str>,
        driver: Option<(String, String)>,
    ) -> Vehicle {
        let (lp, lc) = self.listed.get(terminal).cloned().unwrap_or_default();
        Vehicle {
            terminal: terminal.to_string(),
            plate: lp.or_else(|| plate.map(str::to_string)),
            class: lc.unwrap_or(self.default_class),
            driver,
        }
    }

    pub fn is_listed(&self, terminal: &str) -> bool {
        self.listed.contains_key(terminal)
    }

    /// Take a vehicle into its birth (or update its plate or driver there).
    pub fn note(
        &mut self,
        terminal: &str,
        plate: Option<&str>,
        driver: Option<(String, String)>,
    ) -> Noted {
        let shard = shard_of(terminal, self.shards);
        let v = self.vehicle(terminal, plate, driver);
        let cat = &mut self.catalogued[shard];
        match cat.get(terminal) {
            Some(old) if *old == v => Noted::Unchanged,
            Some(_) => {
                cat.insert(terminal.to_string(), v);
                Noted::Changed(shard)
            }
            None if cat.len() >= self.max_per_shard => {
                if self.uncatalogued.insert(terminal.to_string()) {
                    tracing::error!(
                        terminal,
                        shard,
                        max = self.max_per_shard,
                        "birth full: vehicle taken without a birth; raise jt808 shards"
                    );
                }
                Noted::Uncatalogued
            }
            None => {
                cat.insert(terminal.to_string(), v);
                Noted::Changed(shard)
            }
        }
    }

    /// The vehicle as its birth has it.
    pub fn catalogued(&self, terminal: &str) -> Option<&Vehicle> {
        self.catalogued[shard_of(terminal, self.shards)].get(terminal)
    }

    pub fn uncatalogued(&self) -> usize {
        self.uncatalogued.len()
    }

    pub fn vehicles(&self) -> usize {
        self.catalogued.iter().map(BTreeMap::len).sum::<usize>() + self.uncatalogued.len()
    }

    /// The points of shard `k`'s birth.
    pub fn points(&self, k: usize) -> Vec<PointSpec> {
        self.catalogued[k]
            .values()
            .flat_map(|v| v.points(self.interval_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::jt808::{ActiveSafety, BcdTime, Extra, TyreEvent};

    fn loc() -> Location {
        Location {
            alarm: 0b110,
            status: 0b1110,
            lat_e6: 36_097_500,
            lon_e6: 114_392_800,
            altitude_m: 75,
            speed_dkmh: 825,
            heading: 90,
            time: BcdTime([0x26, 0x11, 0x28, 0x18, 0, 0]),
            extras: vec![],
        }
    }

    #[test]
    fn a_report_gives_position_alarm_and_status() {
        let now = telemetry::parse_time("2026-11-28T12:00:00Z").unwrap();
        let r = location_readings("13800000001", &loc(), now);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].point.as_str(), "V13800000001");
        assert_eq!(
            r[0].ts,
            telemetry::parse_time("2026-11-28T10:00:00Z").unwrap()
        );
        assert_eq!(
            r[0].value,
            Value::Position(Position {
                lat: -36.0975,
                lon: -114.3928,
                speed_kmh: Some(82.5),
                heading: Some(90.0),
                alt_m: Some(75.0)
            })
        );
        assert_eq!(r[0].quality, Quality::Good);
        assert_eq!(
            (r[1].point.as_str(), &r[1].value),
            ("V13800000001.alarm", &Value::Number(6.0))
        );
        assert_eq!(
            (r[2].point.as_str(), &r[2].value),
            ("V13800000001.status", &Value::Number(14.0))
        );
        // No fix, no time, off the earth.
        let mut l = loc();
        l.status = 0;
        assert_eq!(
            location_readings("1", &l, now)[0].quality,
            Quality::Uncertain
        );
        l.time = BcdTime([0; 6]);
        let r = location_readings("1", &l, now);
        assert_eq!((r[0].ts, r[0].quality), (now, Quality::Uncertain));
        l.lat_e6 = 91_000_000;
        assert_eq!(location_readings("1", &l, now)[0].quality, Quality::Bad);
    }

    #[test]
    fn active_safety_word() {
        let base = ActiveSafety {
            kind: ActiveSafetyKind::Adas,
            alarm_id: 1,
            flag: 1,
            event_type: 2,
            level: 2,
            specific: Some([0; 5]),
            speed_kmh: 0,
            altitude_m: 0,
            lat_e6: 0,
            lon_e6: 0,
            time: BcdTime([0; 6]),
            vehicle_status: 0,
            ident: vec![0; 16],
            tyres: vec![],
        };
        let mut l = loc();
        assert_eq!(safety_word(&l), None);
        let dsm = ActiveSafety {
            kind: ActiveSafetyKind::Dsm,
            event_type: 1,
            level: 1,
            ..base.clone()
        };
        let tyre = ActiveSafety {
            kind: ActiveSafetyKind::Tyre,
            event_type: 0,
            level: 0,
            specific: None,
            tyres: vec![TyreEvent {
                position: 1,
                alarm_type: 0b100,
                pressure_kpa: 0,
                temperature_c: 0,
                battery_pct: 0,
            }],
            ..base.clone()
        };
        let ended = ActiveSafety {
            kind: ActiveSafetyKind::BlindSpot,
            flag: 2,
            ..base.clone()
        };
        l.extras = vec![
            Extra::ActiveSafety(base),
            Extra::ActiveSafety(dsm),
            Extra::ActiveSafety(tyre),
            Extra::ActiveSafety(ended.clone()),
        ];
        assert_eq!(
            safety_word(&l),
            Some(2 | (2 << 8) | (1 << 10) | (1 << 18) | (0b100 << 28))
        );
        l.extras = vec![Extra::ActiveSafety(ended)];
        assert_eq!(safety_word(&l), Some(0));
        assert_eq!(
            location_readings(
                "1",
                &l,
                telemetry::parse_time("2026-01-01T00:00:00Z").unwrap()
            )
            .len(),
            4
        );
    }

    #[test]
    fn births_are_bounded_and_listed_vehicles_come_first() {
        let cfg: Jt808Config = toml::from_str(
            r#"
            listen = "127.0.0.1:0"
            site = "trans-01"
            max_vehicles_per_shard = 2
            [[vehicles]]
            terminal = "013800000001"
            plate = "豫E12345"
            class = "hazmat"
            "#,
        )
        .unwrap();
        let mut f = Fleet::new(&cfg);
        let v = f.catalogued("13800000001").unwrap();
        assert_eq!(
            (v.plate.as_deref(), v.class),
            (Some("豫E12345"), VehicleClass::DangerousGoods)
        );
        assert_eq!(f.note("13800000002", Some("豫E2"), None), Noted::Changed(0));
        assert_eq!(f.note("13800000002", Some("豫E2"), None), Noted::Unchanged);
        assert_eq!(f.note("13800000003", None, None), Noted::Uncatalogued);
        assert_eq!((f.vehicles(), f.uncatalogued()), (3, 1));
        let d = Some(("张三".to_string(), "L1".to_string()));
        assert_eq!(f.note("13800000001", None, d), Noted::Changed(0));
        let pts = f.points(0);
        assert_eq!(pts.len(), 8);
        assert_eq!(pts[0].name.as_deref(), Some("豫E12345"));
        assert_eq!(pts[0].tag("vehicle_class"), Some("dangerous_goods"));
        assert_eq!(pts[0].tag("driver"), Some("张三"));
        assert_eq!(pts[4].name.as_deref(), Some("豫E2"));
        assert_eq!(pts[5].quantity.as_str(), "vehicle_alarm");
        assert_eq!(shard_of("13800000001", 3), shard_of("13800000001", 3));
    }
}
