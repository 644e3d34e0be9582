//! The agent's configuration file (TOML). See `edge-agent/README.md` and
//! `edge-agent/examples/agent.toml` for a full example.

use crate::address::{parse_address, Address};
pub use crate::broker::{parse_mqtt_url, BrokerAddr};
use crate::broker::{Broker, BrokerError, TlsFiles};
use crate::decode::{ByteOrder, DataType};
pub use crate::device_time::TimeFormat;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use telemetry::{
    AgentId, Catalogue, LimitKey, Limits, PointId, PointSpec, Quantity, SiteId, SiteInfo, Unit,
};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML for this program: {0}")]
    Syntax(String),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The Modbus function (table) a point is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    Coil,
    DiscreteInput,
    Holding,
    Input,
}

impl Function {
    /// Whether the table holds bits (coils, discrete inputs) rather than 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Function::Coil | Function::DiscreteInput)
    }
    /// The most items one read request may ask for (Modbus application protocol v1.1b3).
    pub fn max_per_request(self) -> u16 {
        if self.is_bits() {
            2000
        } else {
            125
        }
    }
    /// The stored type of a value of this table: `data_type`, or by default `bool` for bits
    /// and `u16` for registers.
    pub fn stored_type(self, data_type: Option<DataType>) -> DataType {
        data_type.unwrap_or(if self.is_bits() {
            DataType::Bool
        } else {
            DataType::U16
        })
    }
    /// How many items (bits or registers) of this table a value of type `ty` spans.
    pub fn width(self, ty: DataType) -> u16 {
        if self.is_bits() {
            1
        } else {
            ty.registers()
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Coil => "coil",
            Function::DiscreteInput => "discrete_input",
            Function::Holding => "holding",
            Function::Input => "input",
        }
    }
}

/// How Modbus frames travel to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP (MBAP header).
    #[default]
    Tcp,
    /// RTU frames (with CRC) over a TCP stream, as serial-to-Ethernet converters speak.
    RtuOverTcp,
    /// RTU on a serial line (RS-485/RS-232): `serial_port`, `baud`, `parity`, `stop_bits`.
    /// Devices naming one port share the line and are polled in turn.
    RtuSerial,
}

/// The parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// The functions `#[serde(default = "...")]` names: `name: Type = value;` each.
macro_rules! serde_defaults {
    ($($vis:vis $name:ident: $ty:ty = $value:expr;)*) => {
        $(
            $vis fn $name() -> $ty {
                $value
            }
        )*
    };
}
pub(crate) use serde_defaults;

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This agent's id (`[a-z0-9][a-z0-9_-]{0,63}`).
    pub agent: AgentId,
    /// The site it belongs to.
    pub site: SiteId,
    /// Where the agent keeps its state (the buffer file by default); created if missing.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Optional site description, sent in the birth.
    #[serde(default)]
    pub site_info: Option<SiteInfo>,
    #[serde(default)]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How often a batch of the readings gathered so far is written and published.
    #[serde(default = "default_publish_interval_ms")]
    pub publish_interval_ms: u64,
    /// A batch holds at most this many readings; more are cut into further batches.
    #[serde(default = "default_max_batch_readings")]
    pub max_batch_readings: usize,
    /// Capacity of the queue between the pollers and the batcher (readings). Pollers wait
    /// when it is full (back-pressure); MQTT device input drops and counts instead.
    #[serde(default = "default_reading_queue")]
    pub reading_queue: usize,
    /// Where to serve Prometheus metrics (`/metrics`), e.g. `127.0.0.1:9100`; none if unset.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    #[serde(default)]
    pub mqtt_inputs: Vec<MqttInputConfig>,
    /// JT/T 808 listeners (vehicle terminals); see `crate::jt808`.
    #[serde(default)]
    pub jt808: Vec<crate::jt808::Jt808Config>,
}

/// The MQTT broker connection. A key left out takes its value from `MqttConfig::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port` (port 1883 by default) or `mqtts://host:port` for TLS (port 8883
    /// by default).
    pub url: String,
    /// Defaults to the agent id.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topic_prefix: String,
    pub keep_alive_s: u64,
    /// Bound on connecting and on waiting for a PUBACK.
    pub timeout_ms: u64,
    /// TLS to the broker even with an `mqtt://` URL (`mqtts://` turns it on by itself).
    pub tls: bool,
    /// PEM file of the CAs that sign the broker's certificate; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for a broker that requires one (`require_certificate true`).
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// The largest MQTT packet sent or received.
    pub max_packet_bytes: usize,
    /// How many batches may await their PUBACK at once.
    pub max_inflight_batches: u16,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: None,
            username: None,
            password: None,
            topic_prefix: "hrs/v1".into(),
            keep_alive_s: 15,
            timeout_ms: 5000,
            tls: false,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            max_packet_bytes: 1024 * 1024,
            max_inflight_batches: 32,
        }
    }
}

impl MqttConfig {
    /// The broker with its TLS settings loaded (files read and checked).
    pub fn broker(&self) -> Result<Broker, BrokerError> {
        Broker::resolve(
            &self.url,
            self.tls,
            &TlsFiles {
                ca_file: self.ca_file.clone(),
                client_cert_file: self.client_cert_file.clone(),
                client_key_file: self.client_key_file.clone(),
            },
        )
    }
}

/// The durable store-and-forward buffer. A key left out takes its value from `BufferConfig::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// The SQLite file; default `<data_dir>/buffer.sqlite`. A relative path is taken from the
    /// working directory.
    pub path: Option<PathBuf>,
    /// When the stored batches exceed this many payload bytes, the oldest are dropped
    /// (counted in `hrs_agent_batches_dropped_total` and logged).
    pub max_bytes: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            path: None,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One Modbus device (or a gateway in front of one unit id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: String,
    /// The device's host (TCP transports); empty for a serial line.
    #[serde(default)]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    #[serde(default)]
    pub transport: Transport,
    /// Bound on connecting and on each request.
    #[serde(default = "default_device_timeout_ms")]
    pub timeout_ms: u64,
    /// How many times a request that timed out or lost its connection is tried again
    /// (after reconnecting) within one poll.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    #[serde(default)]
    pub points: Vec<PointConfig>,
    /// `transport = "rtu_serial"`: the serial port (`/dev/ttyS0`, `/dev/ttyUSB0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_port: Option<String>,
    /// Serial line speed (bit/s).
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default)]
    pub parity: Parity,
    /// 1 or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// 8 (Modbus RTU); 7 for the odd device.
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// Silence on a serial line after each answer before the next request; default 3.5
    /// characters at `baud` (at least 1.75 ms, as the Modbus serial line guide says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_gap_ms: Option<u64>,
    /// A point table (CSV, see `crate::point_table`) whose rows are points of this device,
    /// after those of `points`; relative to the configuration file's folder. Several devices
    /// may read one table: each takes the rows whose device column names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_csv: Option<PathBuf>,
}

/// A point struct of the configuration: the fields given (`point` first), then those every
/// configured point has: its scaling and what its birth says of it.
macro_rules! point_config {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $($(#[$field_attr:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        $(#[$attr])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$field_attr])* pub $field: $ty,)*
            /// value = raw * scale + offset
            #[serde(default = "default_scale")]
            pub scale: f64,
            #[serde(default)]
            pub offset: f64,
            pub quantity: Quantity,
            pub unit: Unit,
            #[serde(default)]
            pub location: Option<String>,
            #[serde(default)]
            pub gas: Option<String>,
            #[serde(default)]
            pub range: Option<[f64; 2]>,
            #[serde(default)]
            pub tags: BTreeMap<String, String>,
            #[serde(default)]
            pub name: Option<String>,
            /// The interval announced in the birth (how often a reading is expected); for a
            /// Modbus point, the device's `poll_interval_ms` by default.
            #[serde(default)]
            pub interval_ms: Option<u64>,
            /// The point's own alarm settings (`{ hh = 90, h = 80 }`), carried into the
            /// catalogue as its `limits` (contract 1.1).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub limits: Option<Limits>,
        }

        impl $name {
            /// The problems of its scaling, range and interval; `at` names the point.
            fn problems(&self, at: &str) -> Vec<String> {
                let mut errs = Vec::new();
                if !self.scale.is_finite() || self.scale == 0.0 {
                    errs.push(format!("{at}: scale must be a finite non-zero number"));
                }
                if !self.offset.is_finite() {
                    errs.push(format!("{at}: offset must be finite"));
                }
                if let Some([lo, hi]) = self.range {
                    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                        errs.push(format!("{at}: range [{lo}, {hi}] is empty"));
                    }
                }
                if self.interval_ms == Some(0) {
                    errs.push(format!("{at}: interval_ms must be positive"));
                }
                if let Some(l) = &self.limits {
                    errs.extend(limits_problems(l).into_iter().map(|e| format!("{at}: {e}")));
                }
                errs
            }

            /// Its entry in the catalogue; `interval_ms` where it sets none.
            fn spec(&self, interval_ms: Option<u64>) -> PointSpec {
                PointSpec {
                    point: self.point.clone(),
                    quantity: self.quantity.clone(),
                    unit: self.unit.clone(),
                    location: self.location.clone(),
                    name: self.name.clone(),
                    range: self.range,
                    interval_ms: self.interval_ms.or(interval_ms),
                    gas: self.gas.clone(),
                    tags: self.tags.clone(),
                    limits: self.limits.clone(),
                }
            }
        }
    };
}

point_config! {
    /// One point of a Modbus device, resolved: its table, zero-based address, unit and bit.
    /// It is read from [`PointToml`] (the form written: addresses as integrators write them).
    #[serde(try_from = "PointToml")]
    pub struct PointConfig {
        pub point: PointId,
        pub function: Function,
        /// Zero-based protocol address (register 40001 is holding address 0).
        pub address: u16,
        /// The unit id of this point when it is not the device's (`unit_id`, or `3!40001`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unit_id: Option<u8>,
        /// The stored type; `bool` for coils and discrete inputs (the default there), `u16` by
        /// default for registers.
        #[serde(rename = "type", default)]
        pub data_type: Option<DataType>,
        /// For `bool` read from a register: the bit, 0 = least significant.
        #[serde(default)]
        pub bit: Option<u8>,
        /// Word and byte order of values wider than a byte (`ABCD`, `CDAB`, `BADC`, `DCBA`).
        #[serde(default)]
        pub order: ByteOrder,
    }
}

impl DeviceConfig {
    /// The silence kept on a serial line after each transaction (see `frame_gap_ms`).
    pub fn frame_gap(&self) -> std::time::Duration {
        match self.frame_gap_ms {
            Some(ms) => std::time::Duration::from_millis(ms),
            None => {
                // 3.5 characters of 11 bits (start, 8 data, parity or a second stop, stop).
                let us = 3.5 * 11.0 * 1e6 / f64::from(self.baud.max(1));
                std::time::Duration::from_micros(us.max(1750.0).ceil() as u64)
            }
        }
    }
    /// Where the device is: `host:port`, or the serial port with its settings.
    pub fn endpoint(&self) -> String {
        match (&self.transport, &self.serial_port) {
            (Transport::RtuSerial, Some(p)) => format!(
                "{p} {} {}{}{}",
                self.baud,
                self.data_bits,
                match self.parity {
                    Parity::None => 'N',
                    Parity::Even => 'E',
                    Parity::Odd => 'O',
                },
                self.stop_bits
            ),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

impl PointConfig {
    /// The stored type, with the defaults applied.
    pub fn ty(&self) -> DataType {
        self.function.stored_type(self.data_type)
    }
    /// How many items (bits or registers) of its table the point spans.
    pub fn width(&self) -> u16 {
        self.function.width(self.ty())
    }
    /// The unit id it is read from on `device`.
    pub fn unit(&self, device: &DeviceConfig) -> u8 {
        self.unit_id.unwrap_or(device.unit_id)
    }
    /// The address as integrators write it (`400001`, `3!300010.2`).
    pub fn written_address(&self) -> Address {
        Address {
            function: Some(self.function),
            offset: self.address,
            unit: self.unit_id,
            bit: self.bit,
        }
    }
}

/// A Modbus point as written in TOML: `function` may be left out where the address names its
/// table (`address = "40001"`); an integer address is a zero-based offset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointToml {
    pub point: PointId,
    #[serde(default)]
    pub function: Option<Function>,
    #[serde(deserialize_with = "deserialize_address")]
    pub address: Address,
    #[serde(default)]
    pub unit_id: Option<u8>,
    #[serde(rename = "type", default)]
    pub data_type: Option<DataType>,
    #[serde(default)]
    pub bit: Option<u8>,
    #[serde(default)]
    pub order: ByteOrder,
    #[serde(default = "default_scale")]
    pub scale: f64,
    #[serde(default)]
    pub offset: f64,
    pub quantity: Quantity,
    pub unit: Unit,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub gas: Option<String>,
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub interval_ms: Option<u64>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// An address: a TOML integer (zero-based offset) or a string as integrators write it.
fn deserialize_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Address;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a zero-based offset 0..65535 or an address string such as \"40001\"")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Address, E> {
            u16::try_from(v)
                .map(Address::offset)
                .map_err(|_| E::custom(format!("address {v} must be 0..65535")))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Address, E> {
            u16::try_from(v)
                .map(Address::offset)
                .map_err(|_| E::custom(format!("address {v} must be 0..65535")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Address, E> {
            parse_address(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// Why a written point cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("point {point}: {why}")]
pub struct ResolveError {
    pub point: String,
    pub why: String,
}

/// The table, unit and bit of a point from its `function`, `unit_id`, `bit` and what its
/// address says; a disagreement is refused.
pub fn resolve_address(
    function: Option<Function>,
    address: &Address,
    unit_id: Option<u8>,
    bit: Option<u8>,
) -> Result<(Function, Option<u8>, Option<u8>), String> {
    let function = match (function, address.function) {
        (Some(f), Some(a)) if f != a => {
            return Err(format!(
                "function = {} but address {address} names a {} table",
                f.as_str(),
                a.as_str()
            ))
        }
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => {
            return Err(format!(
                "address {address} is a zero-based offset: set function (coil, discrete_input, holding, input) or write the table digit (4{:05})",
                u32::from(address.offset) + 1
            ))
        }
    };
    let agree = |key: &str, set: Option<u8>, written: Option<u8>| match (set, written) {
        (Some(a), Some(b)) if a != b => {
            Err(format!("{key} = {a} but the address says {b} ({address})"))
        }
        (a, b) => Ok(a.or(b)),
    };
    Ok((
        function,
        agree("unit_id", unit_id, address.unit)?,
        agree("bit", bit, address.bit)?,
    ))
}

impl TryFrom<PointToml> for PointConfig {
    type Error = ResolveError;
    fn try_from(t: PointToml) -> Result<PointConfig, ResolveError> {
        let (function, unit_id, bit) = resolve_address(t.function, &t.address, t.unit_id, t.bit)
            .map_err(|why| ResolveError {
                point: t.point.to_string(),
                why,
            })?;
        Ok(PointConfig {
            point: t.point,
            function,
            address: t.address.offset,
            unit_id,
            data_type: t.data_type,
            bit,
            order: t.order,
            scale: t.scale,
            offset: t.offset,
            quantity: t.quantity,
            unit: t.unit,
            location: t.location,
            gas: t.gas,
            range: t.range,
            tags: t.tags,
            name: t.name,
            interval_ms: t.interval_ms,
            limits: t.limits,
        })
    }
}

/// The problems of a point's alarm settings: finite, and `ll <= l <= h <= hh` among those set.
pub fn limits_problems(l: &Limits) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, v) in &l.0 {
        if !v.is_finite() {
            errs.push(format!("limit {k:?} must be a finite number"));
        }
    }
    let ordered: Vec<(LimitKey, f64)> = [LimitKey::Ll, LimitKey::L, LimitKey::H, LimitKey::Hh]
        .into_iter()
        .filter_map(|k| l.get(k).map(|v| (k, v)))
        .collect();
    for w in ordered.windows(2) {
        if w[0].1 > w[1].1 {
            errs.push(format!(
                "limits out of order: {} = {} is above {} = {} (ll <= l <= h <= hh)",
                limit_name(w[0].0),
                w[0].1,
                limit_name(w[1].0),
                w[1].1
            ));
        }
    }
    errs
}

fn limit_name(k: LimitKey) -> &'static str {
    match k {
        LimitKey::Hh => "hh",
        LimitKey::H => "h",
        LimitKey::L => "l",
        LimitKey::Ll => "ll",
    }
}

/// A device that speaks MQTT itself: messages on `topic` (a filter) carry JSON objects whose
/// fields map to points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttInputConfig {
    pub name: String,
    /// An MQTT topic filter (`+` and `#` allowed) on the agent's broker.
    pub topic: String,
    /// A JSON pointer (`/ts`) or top-level field name holding the time of the readings (as
    /// `ts_format` says); the arrival time is used when unset or absent.
    #[serde(default)]
    pub ts_field: Option<String>,
    /// How the time is written: `rfc3339` (default), `epoch_s`, `epoch_ms`.
    #[serde(default)]
    pub ts_format: TimeFormat,
    /// The IANA zone (`Asia/Shanghai`) of times written without an offset
    /// (`2026-11-28 09:59:59`); without it such a time is refused.
    #[serde(default)]
    pub ts_zone: Option<String>,
    /// A JSON pointer to the quality of every point that has no `quality_field` of its own.
    #[serde(default)]
    pub quality_field: Option<String>,
    pub points: Vec<MqttPointConfig>,
}

impl MqttInputConfig {
    /// The zone of `ts_zone` (checked by `validate`).
    pub fn zone(&self) -> Option<chrono_tz::Tz> {
        self.ts_zone.as_deref().and_then(|z| z.parse().ok())
    }
}

point_config! {
    /// One point carried by an MQTT device's messages.
    pub struct MqttPointConfig {
        pub point: PointId,
        /// A JSON pointer (`/gas/ch4`) or a top-level field name (`ch4`).
        pub field: String,
        /// The point's own time field (JSON pointer), instead of the input's `ts_field`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ts_field: Option<String>,
        /// A JSON pointer to the point's quality (see the README: absent = good, `0`, `true`
        /// or a quality name, anything else bad).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub quality_field: Option<String>,
    }
}

// The defaults of the keys above.
serde_defaults! {
    default_data_dir: PathBuf = PathBuf::from("data");
    default_publish_interval_ms: u64 = 1000;
    default_max_batch_readings: usize = 5000;
    default_reading_queue: usize = 4096;
    default_port: u16 = 502;
    default_unit_id: u8 = 1;
    default_device_timeout_ms: u64 = 1000;
    default_retries: u32 = 1;
    default_poll_interval_ms: u64 = 1000;
    default_baud: u32 = 9600;
    default_stop_bits: u8 = 1;
    default_data_bits: u8 = 8;
    pub(crate) default_scale: f64 = 1.0;
}

/// A problem for each numeric key outside its bounds (`key`, value, bounds):
/// `"{prefix}{key} = {value} must be {lo}..{hi}"`.
pub(crate) fn out_of_bounds<'a>(
    prefix: &'a str,
    bounds: &'a [(&str, u64, RangeInclusive<u64>)],
) -> impl Iterator<Item = String> + 'a {
    bounds
        .iter()
        .filter(|(_, value, range)| !range.contains(value))
        .map(move |(key, value, range)| {
            format!(
                "{prefix}{key} = {value} must be {}..{}",
                range.start(),
                range.end()
            )
        })
}

/// Turn a field name or JSON pointer into a JSON pointer.
pub fn json_pointer(field: &str) -> String {
    if field.starts_with('/') {
        field.to_string()
    } else {
        format!("/{}", field.replace('~', "~0").replace('/', "~1"))
    }
}

impl AgentConfig {
    /// Parse a TOML document, read its point tables (relative paths from the working
    /// directory) and validate it.
    pub fn from_toml_str(s: &str) -> Result<AgentConfig, ConfigError> {
        Self::from_toml_str_in(s, Path::new("."))
    }

    /// Parse a TOML document, read its point tables (relative paths from `dir`) and validate it.
    pub fn from_toml_str_in(s: &str, dir: &Path) -> Result<AgentConfig, ConfigError> {
        let mut cfg: AgentConfig =
            toml::from_str(s).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        cfg.load_point_tables(dir)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read, parse and validate a file; its point tables are read from its folder.
    pub fn from_file(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str_in(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Append the rows of every device's `points_csv` to its points (once, after parsing).
    /// Every problem of every table is listed, named by file, row and column.
    pub fn load_point_tables(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let mut files: Vec<PathBuf> = Vec::new();
        for d in &self.devices {
            if let Some(f) = &d.points_csv {
                let f = dir.join(f);
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        let mut errs = Vec::new();
        for file in files {
            let readers: Vec<usize> = (0..self.devices.len())
                .filter(|&i| {
                    self.devices[i]
                        .points_csv
                        .as_ref()
                        .is_some_and(|f| dir.join(f) == file)
                })
                .collect();
            let at = format!("points_csv {}", file.display());
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    errs.push(format!("{at}: cannot read: {e}"));
                    continue;
                }
            };
            let rows = match crate::point_table::parse_point_table(&crate::point_table::table_text(
                &bytes,
            )) {
                Ok(rows) => rows,
                Err(e) => {
                    errs.extend(e.into_iter().map(|e| format!("{at}: {e}")));
                    continue;
                }
            };
            let names: Vec<&str> = readers
                .iter()
                .map(|&i| self.devices[i].name.as_str())
                .collect();
            let mut taken: Vec<(usize, PointConfig)> = Vec::new();
            for r in rows {
                let owner = match r.device.as_deref() {
                    None if readers.len() == 1 => Some(readers[0]),
                    None => {
                        errs.push(format!(
                            "{at}: row {}: no device named, and devices {} read this table",
                            r.row,
                            names.join(", ")
                        ));
                        None
                    }
                    Some(name) => {
                        let found = readers
                            .iter()
                            .copied()
                            .find(|&i| self.devices[i].name == name);
                        if found.is_none() {
                            errs.push(format!(
                                "{at}: row {}: device {name:?} does not read this table (devices that do: {})",
                                r.row,
                                names.join(", ")
                            ));
                        }
                        found
                    }
                };
                if let Some(i) = owner {
                    taken.push((i, r.point));
                }
            }
            for (i, p) in taken {
                self.devices[i].points.push(p);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// Apply the environment overrides `HRS_MQTT_URL`, `HRS_TOPIC_PREFIX`,
    /// `HRS_MQTT_USERNAME` and `HRS_MQTT_PASSWORD` (or `HRS_MQTT_PASSWORD_FILE`, a file
    /// holding it, one trailing newline dropped; both set is refused), looked up through
    /// `get` so tests need not touch the process environment, then validate again.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = get("HRS_MQTT_URL").filter(|s| !s.is_empty()) {
            self.mqtt.url = url;
        }
        if let Some(prefix) = get("HRS_TOPIC_PREFIX").filter(|s| !s.is_empty()) {
            self.mqtt.topic_prefix = prefix;
        }
        if let Some(user) = get("HRS_MQTT_USERNAME").filter(|s| !s.is_empty()) {
            self.mqtt.username = Some(user);
        }
        match (get("HRS_MQTT_PASSWORD"), get("HRS_MQTT_PASSWORD_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(vec![
                    "HRS_MQTT_PASSWORD and HRS_MQTT_PASSWORD_FILE are both set: set one".into(),
                ]))
            }
            (Some(p), None) => self.mqtt.password = Some(p),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::Invalid(vec![format!("HRS_MQTT_PASSWORD_FILE {path}: {e}")])
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                self.mqtt.password = Some(text.strip_suffix('\r').unwrap_or(text).to_string());
            }
            (None, None) => {}
        }
        self.validate()
    }

    /// The MQTT client id (the agent id unless set).
    pub fn client_id(&self) -> String {
        self.mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| self.agent.to_string())
    }

    /// The buffer file.
    pub fn buffer_path(&self) -> PathBuf {
        self.buffer
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("buffer.sqlite"))
    }

    /// Check everything `serde` cannot; every problem found is listed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        let m = &self.mqtt;
        if let Err(e) = m.broker() {
            errs.push(e.to_string());
        }
        if m.client_id
            .as_deref()
            .is_some_and(|c| c.is_empty() || c.len() > 64)
        {
            errs.push("mqtt.client_id must be 1 to 64 characters".into());
        }
        if m.password.is_some() && m.username.is_none() {
            errs.push("mqtt.password is set without mqtt.username".into());
        }
        let p = m.topic_prefix.trim_end_matches('/');
        if p.is_empty() || p.contains('+') || p.contains('#') || p.starts_with('/') {
            errs.push(format!(
                "mqtt.topic_prefix {:?} must be a non-empty topic without wildcards or a leading /",
                m.topic_prefix
            ));
        }
        errs.extend(out_of_bounds(
            "mqtt.",
            &[
                ("keep_alive_s", m.keep_alive_s, 5..=65_535),
                ("timeout_ms", m.timeout_ms, 100..=600_000),
            ],
        ));
        if m.max_packet_bytes < 16 * 1024 || m.max_packet_bytes > 256 * 1024 * 1024 {
            errs.push(format!(
                "mqtt.max_packet_bytes = {} must be 16 KiB..256 MiB",
                m.max_packet_bytes
            ));
        }
        if !(1..=1000).contains(&m.max_inflight_batches) {
            errs.push(format!(
                "mqtt.max_inflight_batches = {} must be 1..1000",
                m.max_inflight_batches
            ));
        }
        if self.buffer.max_bytes < 64 * 1024 {
            errs.push(format!(
                "buffer.max_bytes = {} must be at least 65536",
                self.buffer.max_bytes
            ));
        }
        if self.publish_interval_ms < 10 || self.publish_interval_ms > 3_600_000 {
            errs.push(format!(
                "publish_interval_ms = {} must be 10..3600000",
                self.publish_interval_ms
            ));
        }
        if self.max_batch_readings == 0 || self.max_batch_readings > 20_000 {
            errs.push(format!(
                "max_batch_readings = {} must be 1..20000 (the gateway refuses bigger batches)",
                self.max_batch_readings
            ));
        }
        if self.reading_queue == 0 || self.reading_queue > 1_000_000 {
            errs.push(format!(
                "reading_queue = {} must be 1..1000000",
                self.reading_queue
            ));
        }
        if self.devices.is_empty() && self.mqtt_inputs.is_empty() && self.jt808.is_empty() {
            errs.push(
                "no [[devices]], no [[mqtt_inputs]] and no [[jt808]]: the agent would have nothing to read"
                    .into(),
            );
        }
        let mut vehicle_agents = HashSet::new();
        let mut listens = HashSet::new();
        for (i, l) in self.jt808.iter().enumerate() {
            let at = format!("jt808[{i}] ({})", l.listen);
            errs.extend(l.problems(&at, &self.agent));
            if l.listen.port() != 0 && !listens.insert(l.listen) {
                errs.push(format!("{at}: listen address is used twice"));
            }
            for k in 0..l.shards.clamp(1, 64) {
                let a = l.shard_agent(&self.agent, k);
                let clash = a == self.agent.as_str()
                    && (!self.devices.is_empty() || !self.mqtt_inputs.is_empty());
                if clash || !vehicle_agents.insert((l.site.clone(), a.clone())) {
                    errs.push(format!(
                        "{at}: agent id {a} is taken by another input of site {}; set jt808.agent",
                        l.site
                    ));
                }
            }
        }
        let mut points = HashSet::new();
        let mut names = HashSet::new();
        let mut check_point = |errs: &mut Vec<String>, at: &str, point: &PointId| {
            if !points.insert(point.clone()) {
                errs.push(format!(
                    "{at}: point {point} is named more than once (point ids are unique per site)"
                ));
            }
        };
        // Serial lines: port -> (first device, settings).
        let mut lines: std::collections::HashMap<String, (String, LineSettings)> =
            std::collections::HashMap::new();
        for (i, d) in self.devices.iter().enumerate() {
            let dw = format!("devices[{i}] ({})", d.name);
            if d.name.is_empty() {
                errs.push(format!("devices[{i}]: name is empty"));
            } else if !names.insert(d.name.clone()) {
                errs.push(format!("{dw}: device name is used twice"));
            }
            if d.transport == Transport::RtuSerial {
                match &d.serial_port {
                    None => errs.push(format!(
                        "{dw}: transport = \"rtu_serial\" needs serial_port (e.g. \"/dev/ttyS0\")"
                    )),
                    Some(p) if p.is_empty() => errs.push(format!("{dw}: serial_port is empty")),
                    Some(p) => {
                        if let Some((other, settings)) = lines.get(p) {
                            if *settings != (d.baud, d.parity, d.stop_bits, d.data_bits) {
                                errs.push(format!(
                                    "{dw}: serial_port {p} is shared with device {other} but its baud, parity, stop_bits or data_bits differ (one line has one setting)"
                                ));
                            }
                        } else {
                            lines.insert(
                                p.clone(),
                                (d.name.clone(), (d.baud, d.parity, d.stop_bits, d.data_bits)),
                            );
                        }
                    }
                }
                if !d.host.is_empty() {
                    errs.push(format!("{dw}: host applies only to TCP transports (a serial device has serial_port)"));
                }
                if !(300..=921_600).contains(&d.baud) {
                    errs.push(format!("{dw}: baud = {} must be 300..921600", d.baud));
                }
                if !matches!(d.stop_bits, 1 | 2) {
                    errs.push(format!("{dw}: stop_bits = {} must be 1 or 2", d.stop_bits));
                }
                if !matches!(d.data_bits, 7 | 8) {
                    errs.push(format!(
                        "{dw}: data_bits = {} must be 8 (or 7)",
                        d.data_bits
                    ));
                }
                if d.frame_gap_ms.is_some_and(|g| g > 1000) {
                    errs.push(format!("{dw}: frame_gap_ms must be 0..1000"));
                }
            } else {
                if d.host.is_empty() {
                    errs.push(format!("{dw}: host is empty"));
                }
                if d.serial_port.is_some() {
                    errs.push(format!(
                        "{dw}: serial_port applies only to transport = \"rtu_serial\""
                    ));
                }
            }
            if d.port == 0 {
                errs.push(format!("{dw}: port 0 is not a device port"));
            }
            errs.extend(out_of_bounds(
                &format!("{dw}: "),
                &[
                    ("timeout_ms", d.timeout_ms, 10..=600_000),
                    ("retries", u64::from(d.retries), 0..=10),
                    ("poll_interval_ms", d.poll_interval_ms, 10..=86_400_000),
                ],
            ));
            if d.points.is_empty() {
                errs.push(format!(
                    "{dw}: has no [[devices.points]] (and no rows in a points_csv table)"
                ));
            }
            for p in &d.points {
                let pw = format!("{dw} point {}", p.point);
                check_point(&mut errs, &pw, &p.point);
                errs.extend(p.problems(&pw));
                let ty = p.ty();
                if p.function.is_bits() {
                    if ty != DataType::Bool {
                        errs.push(format!(
                            "{pw}: a {} is a single bit, so type must be bool (not {ty})",
                            p.function.as_str()
                        ));
                    }
                    if p.bit.is_some() {
                        errs.push(format!(
                            "{pw}: bit applies only to bool read from a register"
                        ));
                    }
                } else if ty == DataType::Bool {
                    match p.bit {
                        None => errs.push(format!(
                            "{pw}: bool from a {} register needs bit = 0..15",
                            p.function.as_str()
                        )),
                        Some(b) if b > 15 => errs.push(format!("{pw}: bit = {b} must be 0..15")),
                        _ => {}
                    }
                } else if p.bit.is_some() {
                    errs.push(format!("{pw}: bit applies only to type bool"));
                }
                if u32::from(p.address) + u32::from(p.width()) > 65_536 {
                    errs.push(format!(
                        "{pw}: address {} + {} items runs past 65535",
                        p.address,
                        p.width()
                    ));
                }
            }
        }
        for (i, input) in self.mqtt_inputs.iter().enumerate() {
            let iw = format!("mqtt_inputs[{i}] ({})", input.name);
            if input.name.is_empty() {
                errs.push(format!("mqtt_inputs[{i}]: name is empty"));
            } else if !names.insert(input.name.clone()) {
                errs.push(format!(
                    "{iw}: name is used twice (devices and mqtt_inputs share names)"
                ));
            }
            if let Err(e) = check_topic_filter(&input.topic) {
                errs.push(format!("{iw}: {e}"));
            }
            if let Some(z) = &input.ts_zone {
                if z.parse::<chrono_tz::Tz>().is_err() {
                    errs.push(format!(
                        "{iw}: ts_zone {z:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")"
                    ));
                }
            }
            if input.ts_format != TimeFormat::Rfc3339 && input.ts_zone.is_some() {
                errs.push(format!(
                    "{iw}: ts_zone applies only to ts_format = \"rfc3339\" (epoch times have no zone)"
                ));
            }
            if input.points.is_empty() {
                errs.push(format!("{iw}: has no [[mqtt_inputs.points]]"));
            }
            for p in &input.points {
                let pw = format!("{iw} point {}", p.point);
                check_point(&mut errs, &pw, &p.point);
                errs.extend(p.problems(&pw));
                if p.field.is_empty() || p.field == "/" {
                    errs.push(format!("{pw}: field is empty"));
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// The point catalogue this configuration describes (the birth), under `epoch`.
    pub fn catalogue(&self, epoch: &str) -> Catalogue {
        let mut points = Vec::new();
        for d in &self.devices {
            for p in &d.points {
                points.push(p.spec(Some(d.poll_interval_ms)));
            }
        }
        for input in &self.mqtt_inputs {
            for p in &input.points {
                points.push(p.spec(None));
            }
        }
        Catalogue {
            agent: self.agent.clone(),
            epoch: epoch.to_string(),
            site: self.site_info.clone(),
            points,
        }
    }
}

/// What the devices of one serial line must agree on: baud, parity, stop bits, data bits.
type LineSettings = (u32, Parity, u8, u8);

fn check_topic_filter(f: &str) -> Result<(), String> {
    if f.is_empty() {
        return Err("topic filter is empty".into());
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i != levels.len() - 1) {
            return Err(format!("topic filter {f:?}: # must be a whole last level"));
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("topic filter {f:?}: + must be a whole level"));
        }
    }
    Ok(())
}

/// Whether `topic` matches the MQTT filter `filter`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("a/b", "a/b/c"));
        assert!(check_topic_filter("a/#/b").is_err());
        assert!(check_topic_filter("a/b+").is_err());
    }

    /// Broker credentials from the environment, the password also from a file (a trailing
    /// newline dropped); both ways at once is refused.
    #[test]
    fn credentials_from_the_environment_or_a_file() {
        let text = "agent = \"a1\"\nsite = \"s1\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n[[devices]]\nname = \"plc\"\nhost = \"127.0.0.1\"\nport = 502\nunit_id = 1\n  [[devices.points]]\n  point = \"P1\"\n  function = \"holding\"\n  address = 0\n  type = \"u16\"\n  quantity = \"ch4\"\n  unit = \"%\"\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let path = file.display().to_string();
        let mut c = AgentConfig::from_toml_str(text).unwrap();
        c.apply_env(|k| match k {
            "HRS_MQTT_USERNAME" => Some("edge".into()),
            "HRS_MQTT_PASSWORD_FILE" => Some(path.clone()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.mqtt.username.as_deref(), Some("edge"));
        assert_eq!(c.mqtt.password.as_deref(), Some("s3cret"));
        let mut c = AgentConfig::from_toml_str(text).unwrap();
        let both = c.apply_env(|k| match k {
            "HRS_MQTT_PASSWORD" | "HRS_MQTT_PASSWORD_FILE" => Some(path.clone()),
            _ => None,
        });
        assert!(both.is_err());
    }
}
