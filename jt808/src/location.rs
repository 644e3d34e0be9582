//! Location reports (0x0200 bodies, also the items of 0x0704) and their additional items,
//! with the active-safety items of T/JSATL 12-2017 (the Jiangsu standard, 苏标).

use crate::error::BodyError;
use crate::wire::{BcdTime, Reader, Writer};

/// Alarm word bit 0: emergency (SOS switch).
pub const ALARM_EMERGENCY: u32 = 1 << 0;
/// Alarm word bit 1: overspeed.
pub const ALARM_OVERSPEED: u32 = 1 << 1;
/// Alarm word bit 2: fatigue driving.
pub const ALARM_FATIGUE: u32 = 1 << 2;
/// Status word bit 0: ACC on.
pub const STATUS_ACC_ON: u32 = 1 << 0;
/// Status word bit 1: positioned (the fix is valid).
pub const STATUS_POSITIONED: u32 = 1 << 1;
/// Status word bit 2: south latitude.
pub const STATUS_SOUTH: u32 = 1 << 2;
/// Status word bit 3: west longitude.
pub const STATUS_WEST: u32 = 1 << 3;

/// The 28 fixed bytes of a location report and its additional items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub alarm: u32,
    pub status: u32,
    /// Latitude in millionths of a degree, unsigned (the sign is [`STATUS_SOUTH`]).
    pub lat_e6: u32,
    /// Longitude in millionths of a degree, unsigned (the sign is [`STATUS_WEST`]).
    pub lon_e6: u32,
    /// Altitude, metres.
    pub altitude_m: u16,
    /// Speed in tenths of km/h.
    pub speed_dkmh: u16,
    /// Heading, degrees clockwise from north (0-359).
    pub heading: u16,
    /// Terminal time, Beijing time.
    pub time: BcdTime,
    pub extras: Vec<Extra>,
}

impl Location {
    /// Latitude in degrees, negative in the south.
    pub fn lat(&self) -> f64 {
        let v = f64::from(self.lat_e6) / 1e6;
        if self.status & STATUS_SOUTH != 0 {
            -v
        } else {
            v
        }
    }
    /// Longitude in degrees, negative in the west.
    pub fn lon(&self) -> f64 {
        let v = f64::from(self.lon_e6) / 1e6;
        if self.status & STATUS_WEST != 0 {
            -v
        } else {
            v
        }
    }
    pub fn speed_kmh(&self) -> f64 {
        f64::from(self.speed_dkmh) / 10.0
    }
    /// Whether the terminal says its fix is valid (status bit 1).
    pub fn positioned(&self) -> bool {
        self.status & STATUS_POSITIONED != 0
    }
    /// The active-safety items (0x64-0x67) among the extras.
    pub fn active_safety(&self) -> impl Iterator<Item = &ActiveSafety> {
        self.extras.iter().filter_map(|e| match e {
            Extra::ActiveSafety(a) => Some(a),
            _ => None,
        })
    }

    pub fn decode(msg_id: u16, body: &[u8]) -> Result<Location, BodyError> {
        let mut r = Reader::new(msg_id, body);
        let mut l = Location {
            alarm: r.u32("alarm word")?,
            status: r.u32("status word")?,
            lat_e6: r.u32("latitude")?,
            lon_e6: r.u32("longitude")?,
            altitude_m: r.u16("altitude")?,
            speed_dkmh: r.u16("speed")?,
            heading: r.u16("heading")?,
            time: BcdTime::read(&mut r, "time")?,
            extras: Vec::new(),
        };
        while !r.is_empty() {
            if r.remaining() < 2 {
                l.extras.push(Extra::Malformed(r.rest().to_vec()));
                break;
            }
            let head = r.clone().bytes(2, "additional item")?;
            let (id, len) = (head[0], usize::from(head[1]));
            if r.remaining() < 2 + len {
                // A declared length that overruns the body: the rest is kept raw.
                l.extras.push(Extra::Malformed(r.rest().to_vec()));
                break;
            }
            r.bytes(2, "additional item")?;
            let value = r.bytes(len, "additional item")?;
            l.extras.push(Extra::decode(id, value));
        }
        Ok(l)
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.alarm)
            .u32(self.status)
            .u32(self.lat_e6)
            .u32(self.lon_e6)
            .u16(self.altitude_m)
            .u16(self.speed_dkmh)
            .u16(self.heading)
            .bytes(&self.time.0);
        for e in &self.extras {
            e.encode(w);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_vec()
    }
}

/// One additional item of a location report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extra {
    /// 0x01: odometer, tenths of km.
    Mileage(u32),
    /// 0x02: fuel, tenths of a litre.
    Fuel(u16),
    /// 0x03: speed from the driving recorder, tenths of km/h.
    RecorderSpeed(u16),
    /// 0x11: overspeed alarm detail: position type (0 none, 1 circle, 2 rectangle, 3 polygon,
    /// 4 route) and the area or route id (absent for type 0).
    OverspeedArea { kind: u8, area_id: Option<u32> },
    /// 0x12: entering or leaving an area or route: position type, id, direction (0 in, 1 out).
    AreaRoute {
        kind: u8,
        area_id: u32,
        direction: u8,
    },
    /// 0x13: route-segment driving time: segment id, seconds, result (0 too short, 1 too long).
    RouteTime {
        route_id: u32,
        drive_time_s: u16,
        result: u8,
    },
    /// 0x25: extended vehicle signal status bits.
    ExtendedSignals(u32),
    /// 0x2A: IO status bits.
    IoStatus(u16),
    /// 0x2B: analog inputs (bits 0-15 AD0, 16-31 AD1).
    Analog(u32),
    /// 0x30: wireless signal strength.
    SignalStrength(u8),
    /// 0x31: GNSS satellites in view.
    Satellites(u8),
    /// 0x64 ADAS, 0x65 DSM, 0x66 tyre pressure, 0x67 blind spot.
    ActiveSafety(ActiveSafety),
    /// Any other id, or a known id whose length is not the one the standard gives: raw.
    Unknown { id: u8, value: Vec<u8> },
    /// Trailing bytes that are not a whole item (a declared length that overruns the body):
    /// kept raw, from the item's id on.
    Malformed(Vec<u8>),
}

impl Extra {
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Extra::Mileage(_) => 0x01,
            Extra::Fuel(_) => 0x02,
            Extra::RecorderSpeed(_) => 0x03,
            Extra::OverspeedArea { .. } => 0x11,
            Extra::AreaRoute { .. } => 0x12,
            Extra::RouteTime { .. } => 0x13,
            Extra::ExtendedSignals(_) => 0x25,
            Extra::IoStatus(_) => 0x2A,
            Extra::Analog(_) => 0x2B,
            Extra::SignalStrength(_) => 0x30,
            Extra::Satellites(_) => 0x31,
            Extra::ActiveSafety(a) => a.kind.id(),
            Extra::Unknown { id, .. } => *id,
            Extra::Malformed(_) => return None,
        })
    }

    fn decode(id: u8, v: &[u8]) -> Extra {
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let known = match (id, v.len()) {
            (0x01, 4) => Some(Extra::Mileage(be32(v))),
            (0x02, 2) => Some(Extra::Fuel(be16(v))),
            (0x03, 2) => Some(Extra::RecorderSpeed(be16(v))),
            (0x11, 1) if v[0] == 0 => Some(Extra::OverspeedArea {
                kind: 0,
                area_id: None,
            }),
            (0x11, 5) if v[0] != 0 => Some(Extra::OverspeedArea {
                kind: v[0],
                area_id: Some(be32(&v[1..])),
            }),
            (0x12, 6) => Some(Extra::AreaRoute {
                kind: v[0],
                area_id: be32(&v[1..5]),
                direction: v[5],
            }),
            (0x13, 7) => Some(Extra::RouteTime {
                route_id: be32(v),
                drive_time_s: be16(&v[4..]),
                result: v[6],
            }),
            (0x25, 4) => Some(Extra::ExtendedSignals(be32(v))),
            (0x2A, 2) => Some(Extra::IoStatus(be16(v))),
            (0x2B, 4) => Some(Extra::Analog(be32(v))),
            (0x30, 1) => Some(Extra::SignalStrength(v[0])),
            (0x31, 1) => Some(Extra::Satellites(v[0])),
            (0x64..=0x67, _) => {
                ActiveSafety::decode(ActiveSafetyKind::from_id(id).expect("0x64..0x67"), v)
                    .map(Extra::ActiveSafety)
            }
            _ => None,
        };
        known.unwrap_or_else(|| Extra::Unknown {
            id,
            value: v.to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer) {
        let mut v = Writer::new();
        match self {
            Extra::Mileage(x) | Extra::ExtendedSignals(x) | Extra::Analog(x) => {
                v.u32(*x);
            }
            Extra::Fuel(x) | Extra::RecorderSpeed(x) | Extra::IoStatus(x) => {
                v.u16(*x);
            }
            Extra::OverspeedArea { kind, area_id } => {
                v.u8(*kind);
                if let Some(a) = area_id {
                    v.u32(*a);
                }
            }
            Extra::AreaRoute {
                kind,
                area_id,
                direction,
            } => {
                v.u8(*kind).u32(*area_id).u8(*direction);
            }
            Extra::RouteTime {
                route_id,
                drive_time_s,
                result,
            } => {
                v.u32(*route_id).u16(*drive_time_s).u8(*result);
            }
            Extra::SignalStrength(x) | Extra::Satellites(x) => {
                v.u8(*x);
            }
            Extra::ActiveSafety(a) => a.encode(&mut v),
            Extra::Unknown { value, .. } => {
                v.bytes(value);
            }
            Extra::Malformed(raw) => {
                w.bytes(raw);
                return;
            }
        }
        let v = v.into_vec();
        let id = self.id().expect("not malformed");
        // An item longer than 255 bytes cannot be written; it is cut (only a hand-built
        // Unknown item can be that long).
        let len = v.len().min(255);
        w.u8(id).u8(len as u8).bytes(&v[..len]);
    }
}

/// Which active-safety system raised the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveSafetyKind {
    /// 0x64: advanced driver assistance (forward collision, lane departure, ...).
    Adas,
    /// 0x65: driver state monitoring (fatigue, phone, smoking, distraction, ...).
    Dsm,
    /// 0x66: tyre pressure monitoring.
    Tyre,
    /// 0x67: blind-spot monitoring.
    BlindSpot,
}

impl ActiveSafetyKind {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x64 => ActiveSafetyKind::Adas,
            0x65 => ActiveSafetyKind::Dsm,
            0x66 => ActiveSafetyKind::Tyre,
            0x67 => ActiveSafetyKind::BlindSpot,
            _ => return None,
        })
    }
    pub fn id(self) -> u8 {
        match self {
            ActiveSafetyKind::Adas => 0x64,
            ActiveSafetyKind::Dsm => 0x65,
            ActiveSafetyKind::Tyre => 0x66,
            ActiveSafetyKind::BlindSpot => 0x67,
        }
    }
}

/// One tyre's alarm in a 0x66 item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TyreEvent {
    /// Tyre position, counted from the front left.
    pub position: u8,
    /// Alarm bits: 0 pressure, 1 high pressure, 2 low pressure, 3 high temperature, 4 sensor
    /// fault, 5 leak, 6 sensor battery low.
    pub alarm_type: u16,
    pub pressure_kpa: u16,
    pub temperature_c: u16,
    pub battery_pct: u16,
}

/// An active-safety item (T/JSATL 12-2017 section 4.5.3): the fields every kind shares, the
/// kind's own bytes, and the alarm identification kept raw (16 bytes in the Jiangsu
/// standard: terminal id BYTE[7], time BCD[6], serial, attachment count, reserved; some
/// regional variants use a 30-byte terminal id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSafety {
    pub kind: ActiveSafetyKind,
    pub alarm_id: u32,
    /// 0 not available, 1 start, 2 end.
    pub flag: u8,
    /// The alarm or event type (ADAS: 1 forward collision, 2 lane departure, 3 vehicle too
    /// close, 4 pedestrian collision, 5 frequent lane change, 6 road sign over limit, 7
    /// obstacle, 0x10 road sign, 0x11 active capture; DSM: 1 fatigue, 2 phone call, 3 smoking,
    /// 4 distraction, 5 driver abnormal, 0x10 auto capture, 0x11 driver change; blind spot: 1
    /// rear, 2 left rear, 3 right rear). 0 for tyre items, whose types are per tyre.
    pub event_type: u8,
    /// 1 first level, 2 second level (ADAS and DSM); 0 where the item has no level.
    pub level: u8,
    /// ADAS: front vehicle speed, front distance, departure type, road sign type, road sign
    /// data; DSM: fatigue degree and four reserved bytes. `None` for tyre and blind spot.
    pub specific: Option<[u8; 5]>,
    pub speed_kmh: u8,
    pub altitude_m: u16,
    pub lat_e6: u32,
    pub lon_e6: u32,
    pub time: BcdTime,
    pub vehicle_status: u16,
    pub ident: Vec<u8>,
    /// Tyre items only.
    pub tyres: Vec<TyreEvent>,
}

impl ActiveSafety {
    fn decode(kind: ActiveSafetyKind, v: &[u8]) -> Option<ActiveSafety> {
        let mut r = Reader::new(0x0200, v);
        let alarm_id = r.u32("alarm id").ok()?;
        let flag = r.u8("flag").ok()?;
        let (event_type, level, specific) = match kind {
            ActiveSafetyKind::Adas | ActiveSafetyKind::Dsm => {
                let t = r.u8("type").ok()?;
                let l = r.u8("level").ok()?;
                let s = r.bytes(5, "specific").ok()?;
                (t, l, Some([s[0], s[1], s[2], s[3], s[4]]))
            }
            ActiveSafetyKind::BlindSpot => (r.u8("type").ok()?, 0, None),
            ActiveSafetyKind::Tyre => (0, 0, None),
        };
        let speed_kmh = r.u8("speed").ok()?;
        let altitude_m = r.u16("altitude").ok()?;
        let lat_e6 = r.u32("latitude").ok()?;
        let lon_e6 = r.u32("longitude").ok()?;
        let time = BcdTime::read(&mut r, "time").ok()?;
        let vehicle_status = r.u16("vehicle status").ok()?;
        let (ident, tyres) = if kind == ActiveSafetyKind::Tyre {
            // identification, count, count x 9 bytes: find the identification length that fits.
            let rest = r.rest();
            let fit = [16usize, 40]
                .into_iter()
                .find(|&n| rest.len() > n && rest.len() == n + 1 + 9 * usize::from(rest[n]))?;
            let mut tr = Reader::new(0x0200, &rest[fit + 1..]);
            let mut tyres = Vec::new();
            for _ in 0..rest[fit] {
                tyres.push(TyreEvent {
                    position: tr.u8("tyre").ok()?,
                    alarm_type: tr.u16("tyre alarm").ok()?,
                    pressure_kpa: tr.u16("pressure").ok()?,
                    temperature_c: tr.u16("temperature").ok()?,
                    battery_pct: tr.u16("battery").ok()?,
                });
            }
            (rest[..fit].to_vec(), tyres)
        } else {
            (r.rest().to_vec(), Vec::new())
        };
        Some(ActiveSafety {
            kind,
            alarm_id,
            flag,
            event_type,
            level,
            specific,
            speed_kmh,
            altitude_m,
            lat_e6,
            lon_e6,
            time,
            vehicle_status,
            ident,
            tyres,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.u32(self.alarm_id).u8(self.flag);
        match self.kind {
            ActiveSafetyKind::Adas | ActiveSafetyKind::Dsm => {
                w.u8(self.event_type)
                    .u8(self.level)
                    .bytes(&self.specific.unwrap_or_default());
            }
            ActiveSafetyKind::BlindSpot => {
                w.u8(self.event_type);
            }
            ActiveSafetyKind::Tyre => {}
        }
        w.u8(self.speed_kmh)
            .u16(self.altitude_m)
            .u32(self.lat_e6)
            .u32(self.lon_e6)
            .bytes(&self.time.0)
            .u16(self.vehicle_status)
            .bytes(&self.ident);
        if self.kind == ActiveSafetyKind::Tyre {
            w.u8(self.tyres.len() as u8);
            for t in &self.tyres {
                w.u8(t.position)
                    .u16(t.alarm_type)
                    .u16(t.pressure_kpa)
                    .u16(t.temperature_c)
                    .u16(t.battery_pct);
            }
        }
    }
}
