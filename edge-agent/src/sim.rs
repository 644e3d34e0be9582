//! A Modbus device simulator: one Modbus TCP (or RTU-over-TCP) server per simulated device,
//! with generated values stored in the register encoding of their type and order.
//!
//! Holding registers and coils are writable (function codes 5, 6, 15, 16): a written value
//! holds, overriding the generator, for the value's `hold_ms` (or the device's) or until it is
//! written again. Reading or writing an address that no value defines is answered with
//! `IllegalDataAddress`; a read of more than 125 registers or 2000 bits with
//! `IllegalDataValue`. The simulator answers any unit id.
//!
//! See `edge-agent/examples/simulator.toml` for the file format.

use crate::config::{default_scale, serde_defaults, Function, Transport};
use crate::decode::{encode_registers, ByteOrder, DataType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read simulator config {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("simulator config is not valid TOML for this program: {0}")]
    Syntax(String),
    #[error("invalid simulator configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    #[error("simulated device {device}: cannot listen on {addr}: {source}")]
    Bind {
        device: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The simulator file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    pub devices: Vec<SimDeviceConfig>,
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimDeviceConfig {
    pub name: String,
    /// Where to listen; port 0 picks a free port (see [`SimulatorHandle::addr`]).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub transport: Transport,
    /// How often generators step.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// How long a value written over Modbus overrides its generator, unless the value says.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    pub values: Vec<SimValueConfig>,
}

/// One simulated value at one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimValueConfig {
    /// A label for logs (usually the point the agent reads it as).
    #[serde(default)]
    pub point: Option<String>,
    pub function: Function,
    pub address: u16,
    #[serde(rename = "type", default)]
    pub data_type: Option<DataType>,
    #[serde(default)]
    pub bit: Option<u8>,
    #[serde(default)]
    pub order: ByteOrder,
    /// The generator works in engineering units; the register holds
    /// `(value - offset) / scale` in the stored type.
    #[serde(default = "default_scale")]
    pub scale: f64,
    #[serde(default)]
    pub offset: f64,
    #[serde(default)]
    pub hold_ms: Option<u64>,
    pub signal: Signal,
}

impl SimValueConfig {
    pub fn ty(&self) -> DataType {
        self.function.stored_type(self.data_type)
    }
    fn width(&self) -> u16 {
        self.function.width(self.ty())
    }
}

/// How a simulated value moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// Always `value` (bools: 0 or 1).
    Static { value: f64 },
    /// Starts at `start` (default the middle), moves by up to `step` per tick within
    /// [`min`, `max`]. The same `seed` gives the same walk.
    RandomWalk {
        min: f64,
        max: f64,
        step: f64,
        #[serde(default)]
        seed: Option<u64>,
        #[serde(default)]
        start: Option<f64>,
    },
    /// A random walk that now and then (with probability `chance` per tick) jumps to a value
    /// between `level` and `peak` and stays there for `duration_ms`.
    Spikes {
        min: f64,
        max: f64,
        step: f64,
        level: f64,
        peak: f64,
        chance: f64,
        duration_ms: u64,
        #[serde(default)]
        seed: Option<u64>,
    },
    /// `values` in turn, each for `step_ms`; after the last, starts over (`repeat`, the
    /// default) or stays on the last.
    Script {
        values: Vec<f64>,
        step_ms: u64,
        #[serde(default = "default_true")]
        repeat: bool,
    },
}

// The defaults of the keys above.
serde_defaults! {
    default_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    default_tick_ms: u64 = 1000;
    default_hold_ms: u64 = 60_000;
    default_true: bool = true;
}

/// `a <= b`, false when either is NaN.
fn le(a: f64, b: f64) -> bool {
    matches!(
        a.partial_cmp(&b),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

impl SimulatorConfig {
    pub fn from_toml_str(s: &str) -> Result<SimulatorConfig, SimError> {
        let c: SimulatorConfig = toml::from_str(s).map_err(|e| SimError::Syntax(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<SimulatorConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let mut errs = Vec::new();
        if self.devices.is_empty() {
            errs.push("no [[devices]]".to_string());
        }
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let dw = format!("devices[{i}] ({})", d.name);
            if d.name.is_empty() || !names.insert(d.name.clone()) {
                errs.push(format!("{dw}: name is empty or used twice"));
            }
            if d.tick_ms < 10 {
                errs.push(format!("{dw}: tick_ms must be at least 10"));
            }
            if d.transport == Transport::RtuSerial {
                errs.push(format!(
                    "{dw}: the simulator listens on TCP (tcp or rtu_over_tcp); a serial device is simulated with pymodbus over a socat pty pair (tests/py/serial_gas.py)"
                ));
            }
            let mut used: BTreeMap<(Function, u16), (usize, Option<u8>)> = BTreeMap::new();
            for (j, v) in d.values.iter().enumerate() {
                let vw = format!("{dw} values[{j}] ({} {})", v.function.as_str(), v.address);
                let ty = v.ty();
                if v.function.is_bits() && ty != DataType::Bool {
                    errs.push(format!("{vw}: a {} holds a bool", v.function.as_str()));
                }
                if !v.function.is_bits() && ty == DataType::Bool && v.bit.is_none_or(|b| b >= 16) {
                    errs.push(format!("{vw}: bool in a register needs bit = 0..15"));
                }
                if !v.scale.is_finite() || v.scale == 0.0 || !v.offset.is_finite() {
                    errs.push(format!(
                        "{vw}: scale must be finite and non-zero, offset finite"
                    ));
                }
                if u32::from(v.address) + u32::from(v.width()) > 65_536 {
                    errs.push(format!("{vw}: runs past address 65535"));
                }
                for a in v.address..v.address.saturating_add(v.width()) {
                    let bit = if ty == DataType::Bool && !v.function.is_bits() {
                        v.bit
                    } else {
                        None
                    };
                    if let Some((other, other_bit)) = used.insert((v.function, a), (j, bit)) {
                        // Bools on different bits of one register may share it.
                        if bit.is_none() || other_bit.is_none() || bit == other_bit {
                            errs.push(format!("{vw}: address {a} is also used by values[{other}]"));
                        }
                    }
                }
                match &v.signal {
                    Signal::Static { value } if !value.is_finite() => {
                        errs.push(format!("{vw}: value must be finite"))
                    }
                    Signal::RandomWalk { min, max, step, .. }
                        if !le(*min, *max) || !le(0.0, *step) =>
                    {
                        errs.push(format!("{vw}: random_walk needs min <= max and step >= 0"))
                    }
                    Signal::Spikes {
                        min,
                        max,
                        step,
                        level,
                        peak,
                        chance,
                        duration_ms,
                        ..
                    } if !le(*min, *max)
                        || !le(0.0, *step)
                        || !le(*level, *peak)
                        || !(0.0..=1.0).contains(chance)
                        || *duration_ms == 0 =>
                    {
                        errs.push(format!(
                            "{vw}: spikes needs min <= max, step >= 0, level <= peak, chance in 0..1, duration_ms > 0"
                        ))
                    }
                    Signal::Script {
                        values, step_ms, ..
                    } if values.is_empty() || *step_ms == 0 => {
                        errs.push(format!("{vw}: script needs values and step_ms > 0"))
                    }
                    _ => {}
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(SimError::Invalid(errs))
        }
    }
}

/// A random move of at most `step` either way (none when `step` is 0).
fn jitter(rng: &mut StdRng, step: f64) -> f64 {
    if step > 0.0 {
        rng.gen_range(-step..=step)
    } else {
        0.0
    }
}

/// A generator's moving state.
struct Generator {
    signal: Signal,
    rng: StdRng,
    current: f64,
    spike_until: Option<Instant>,
    started: Instant,
}

impl Generator {
    fn new(signal: Signal, index: usize, started: Instant) -> Self {
        let (seed, current) = match &signal {
            Signal::Static { value } => (None, *value),
            Signal::RandomWalk {
                min,
                max,
                seed,
                start,
                ..
            } => (*seed, start.unwrap_or((min + max) / 2.0)),
            Signal::Spikes { min, max, seed, .. } => (*seed, (min + max) / 2.0),
            Signal::Script { values, .. } => (None, values[0]),
        };
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s.wrapping_add(index as u64)),
            None => StdRng::from_entropy(),
        };
        Generator {
            signal,
            rng,
            current,
            spike_until: None,
            started,
        }
    }

    fn step(&mut self, now: Instant) -> f64 {
        match &self.signal {
            Signal::Static { value } => self.current = *value,
            Signal::RandomWalk { min, max, step, .. } => {
                let d = jitter(&mut self.rng, *step);
                self.current = (self.current + d).clamp(*min, *max);
            }
            Signal::Spikes {
                min,
                max,
                step,
                level,
                peak,
                chance,
                duration_ms,
                ..
            } => {
                if self.spike_until.is_some_and(|t| now < t) {
                    // Stay high for the spike's duration.
                } else {
                    if self.spike_until.take().is_some() {
                        self.current = (min + max) / 2.0;
                    }
                    if *chance > 0.0 && self.rng.gen_bool(*chance) {
                        self.spike_until = Some(now + Duration::from_millis(*duration_ms));
                        self.current = if peak > level {
                            self.rng.gen_range(*level..=*peak)
                        } else {
                            *level
                        };
                    } else {
                        let d = jitter(&mut self.rng, *step);
                        self.current = (self.current.clamp(*min, *max) + d).clamp(*min, *max);
                    }
                }
            }
            Signal::Script {
                values,
                step_ms,
                repeat,
            } => {
                let i =
                    (now.duration_since(self.started).as_millis() / u128::from(*step_ms)) as usize;
                let i = if *repeat {
                    i % values.len()
                } else {
                    i.min(values.len() - 1)
                };
                self.current = values[i];
            }
        }
        self.current
    }
}

struct ValueState {
    cfg: SimValueConfig,
    gen: Generator,
    held_until: Option<Instant>,
}

/// The memory of one simulated device.
struct DeviceMemory {
    coils: BTreeMap<u16, bool>,
    discrete: BTreeMap<u16, bool>,
    holding: BTreeMap<u16, u16>,
    input: BTreeMap<u16, u16>,
    values: Vec<ValueState>,
    hold: Duration,
}

/// What a Modbus write stores: coils (bits) or holding registers (words).
trait Writable: Copy {
    const FUNCTION: Function;
    fn table(memory: &mut DeviceMemory) -> &mut BTreeMap<u16, Self>;
}

impl Writable for bool {
    const FUNCTION: Function = Function::Coil;
    fn table(memory: &mut DeviceMemory) -> &mut BTreeMap<u16, bool> {
        &mut memory.coils
    }
}

impl Writable for u16 {
    const FUNCTION: Function = Function::Holding;
    fn table(memory: &mut DeviceMemory) -> &mut BTreeMap<u16, u16> {
        &mut memory.holding
    }
}

impl DeviceMemory {
    fn new(cfg: &SimDeviceConfig, now: Instant) -> Self {
        let mut m = DeviceMemory {
            coils: BTreeMap::new(),
            discrete: BTreeMap::new(),
            holding: BTreeMap::new(),
            input: BTreeMap::new(),
            values: cfg
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| ValueState {
                    cfg: v.clone(),
                    gen: Generator::new(v.signal.clone(), i, now),
                    held_until: None,
                })
                .collect(),
            hold: Duration::from_millis(cfg.hold_ms),
        };
        // Every defined address exists from the start.
        for v in &cfg.values {
            for a in v.address..v.address.saturating_add(v.width()) {
                match v.function {
                    Function::Coil => drop(m.coils.insert(a, false)),
                    Function::DiscreteInput => drop(m.discrete.insert(a, false)),
                    Function::Holding => drop(m.holding.insert(a, 0)),
                    Function::Input => drop(m.input.insert(a, 0)),
                }
            }
        }
        m.tick(now);
        m
    }

    fn store(&mut self, i: usize, value: f64) {
        let v = &self.values[i].cfg;
        let (function, address, ty, order, bit) = (v.function, v.address, v.ty(), v.order, v.bit);
        if function.is_bits() {
            let b = value != 0.0;
            match function {
                Function::Coil => drop(self.coils.insert(address, b)),
                _ => drop(self.discrete.insert(address, b)),
            }
            return;
        }
        let raw = if ty == DataType::Bool {
            value
        } else {
            (value - v.offset) / v.scale
        };
        let regs = match encode_registers(raw, ty, order, bit) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(address, error = %e, "simulated value does not fit its type; register left as it was");
                return;
            }
        };
        let table = if function == Function::Holding {
            &mut self.holding
        } else {
            &mut self.input
        };
        if ty == DataType::Bool {
            let mask = 1u16 << bit.unwrap_or(0);
            let mask_in_order = encode_registers(1.0, ty, order, bit)
                .map(|r| r[0])
                .unwrap_or(mask);
            let old = table.get(&address).copied().unwrap_or(0);
            table.insert(address, (old & !mask_in_order) | (regs[0] & mask_in_order));
        } else {
            for (k, r) in regs.into_iter().enumerate() {
                table.insert(address + k as u16, r);
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        for i in 0..self.values.len() {
            let vs = &mut self.values[i];
            if let Some(t) = vs.held_until {
                if now < t {
                    continue;
                }
                vs.held_until = None;
            }
            let value = vs.gen.step(now);
            self.store(i, value);
        }
    }

    /// Mark the values touching `[address, address + count)` of `function` as held.
    fn hold(&mut self, function: Function, address: u16, count: u16, now: Instant) {
        let end = u32::from(address) + u32::from(count);
        let default = self.hold;
        for vs in &mut self.values {
            let v = &vs.cfg;
            let (vs_a, vs_end) = (
                u32::from(v.address),
                u32::from(v.address) + u32::from(v.width()),
            );
            if v.function == function && vs_a < end && u32::from(address) < vs_end {
                vs.held_until = Some(now + v.hold_ms.map_or(default, Duration::from_millis));
            }
        }
    }

    /// A Modbus write of 1 to `max` `values` from `a` on: refused unless every address is
    /// defined; otherwise stored and held. How many were written.
    fn write<T: Writable>(
        &mut self,
        a: u16,
        values: &[T],
        max: usize,
        now: Instant,
    ) -> Result<u16, ExceptionCode> {
        if values.is_empty() || values.len() > max {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let table = T::table(self);
        for k in 0..values.len() {
            let x = u32::from(a) + k as u32;
            if u16::try_from(x).ok().and_then(|x| table.get(&x)).is_none() {
                return Err(ExceptionCode::IllegalDataAddress);
            }
        }
        for (k, v) in values.iter().enumerate() {
            table.insert(a + k as u16, *v);
        }
        let n = values.len() as u16;
        self.hold(T::FUNCTION, a, n, now);
        Ok(n)
    }

    fn handle(&mut self, req: Request<'_>, now: Instant) -> Result<Response, ExceptionCode> {
        fn read<T: Copy>(
            t: &BTreeMap<u16, T>,
            a: u16,
            n: u16,
            max: u16,
        ) -> Result<Vec<T>, ExceptionCode> {
            if n == 0 || n > max {
                return Err(ExceptionCode::IllegalDataValue);
            }
            (u32::from(a)..u32::from(a) + u32::from(n))
                .map(|x| {
                    u16::try_from(x)
                        .ok()
                        .and_then(|x| t.get(&x).copied())
                        .ok_or(ExceptionCode::IllegalDataAddress)
                })
                .collect()
        }
        match req {
            Request::ReadCoils(a, n) => Ok(Response::ReadCoils(read(&self.coils, a, n, 2000)?)),
            Request::ReadDiscreteInputs(a, n) => Ok(Response::ReadDiscreteInputs(read(
                &self.discrete,
                a,
                n,
                2000,
            )?)),
            Request::ReadHoldingRegisters(a, n) => Ok(Response::ReadHoldingRegisters(read(
                &self.holding,
                a,
                n,
                125,
            )?)),
            Request::ReadInputRegisters(a, n) => {
                Ok(Response::ReadInputRegisters(read(&self.input, a, n, 125)?))
            }
            Request::WriteSingleCoil(a, b) => self
                .write(a, &[b], 1, now)
                .map(|_| Response::WriteSingleCoil(a, b)),
            Request::WriteMultipleCoils(a, bits) => {
                let n = self.write(a, &bits, 1968, now)?;
                Ok(Response::WriteMultipleCoils(a, n))
            }
            Request::WriteSingleRegister(a, w) => self
                .write(a, &[w], 1, now)
                .map(|_| Response::WriteSingleRegister(a, w)),
            Request::WriteMultipleRegisters(a, words) => {
                let n = self.write(a, &words, 123, now)?;
                Ok(Response::WriteMultipleRegisters(a, n))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

#[derive(Clone)]
struct SimService {
    memory: Arc<Mutex<DeviceMemory>>,
}

impl tokio_modbus::server::Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let result = self
            .memory
            .lock()
            .expect("simulator memory lock")
            .handle(req.request, Instant::now());
        Box::pin(std::future::ready(result))
    }
}

/// A running simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    pub name: String,
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The simulator entry point.
pub struct Simulator;

/// The running simulator; stops on drop or [`SimulatorHandle::shutdown`].
pub struct SimulatorHandle {
    devices: Vec<SimDevice>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Bind every device's listener and start serving.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle, SimError> {
        config.validate()?;
        let cancel = CancellationToken::new();
        let mut devices = Vec::new();
        let mut tasks = Vec::new();
        let mut listeners = Vec::new();
        // Bind all first, so a bind error leaves nothing running.
        for d in &config.devices {
            let l = tokio::net::TcpListener::bind(d.listen)
                .await
                .map_err(|source| SimError::Bind {
                    device: d.name.clone(),
                    addr: d.listen,
                    source,
                })?;
            let addr = l.local_addr().map_err(|source| SimError::Bind {
                device: d.name.clone(),
                addr: d.listen,
                source,
            })?;
            devices.push(SimDevice {
                name: d.name.clone(),
                addr,
                transport: d.transport,
            });
            listeners.push(l);
        }
        for (d, listener) in config.devices.into_iter().zip(listeners) {
            let memory = Arc::new(Mutex::new(DeviceMemory::new(&d, Instant::now())));
            let service = SimService {
                memory: memory.clone(),
            };
            let c = cancel.clone();
            let tick = Duration::from_millis(d.tick_ms);
            tasks.push(tokio::spawn(async move {
                let mut t = tokio::time::interval(tick);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = c.cancelled() => break,
                        _ = t.tick() => memory.lock().expect("simulator memory lock").tick(Instant::now()),
                    }
                }
            }));
            let c = cancel.clone();
            let name = d.name.clone();
            tracing::info!(device = %name, addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), transport = ?d.transport, "simulated device listening");
            match d.transport {
                Transport::Tcp => {
                    let server = tokio_modbus::server::tcp::Server::new(listener);
                    tasks.push(tokio::spawn(async move {
                        let on_connected = |stream, addr| {
                            let s = service.clone();
                            async move { tokio_modbus::server::tcp::accept_tcp_connection(stream, addr, move |_| Ok(Some(s.clone()))) }
                        };
                        let on_err = |e| tracing::debug!(error = %e, "simulator connection ended");
                        tokio::select! {
                            _ = c.cancelled() => {}
                            r = server.serve(&on_connected, on_err) => if let Err(e) = r { tracing::error!(device = %name, error = %e, "simulator stopped") },
                        }
                    }));
                }
                Transport::RtuSerial => unreachable!("refused by SimulatorConfig::validate"),
                Transport::RtuOverTcp => {
                    let server = tokio_modbus::server::rtu_over_tcp::Server::new(listener);
                    tasks.push(tokio::spawn(async move {
                        let on_connected = |stream, addr| {
                            let s = service.clone();
                            async move {
                                tokio_modbus::server::rtu_over_tcp::accept_tcp_connection(stream, addr, move |_| Ok(Some(s.clone())))
                            }
                        };
                        let on_err = |e| tracing::debug!(error = %e, "simulator connection ended");
                        tokio::select! {
                            _ = c.cancelled() => {}
                            r = server.serve(&on_connected, on_err) => if let Err(e) = r { tracing::error!(device = %name, error = %e, "simulator stopped") },
                        }
                    }));
                }
            }
        }
        Ok(SimulatorHandle {
            devices,
            cancel,
            tasks,
        })
    }
}

impl SimulatorHandle {
    /// The devices, with their bound addresses.
    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }
    /// The bound address of the device named `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.devices.iter().find(|d| d.name == name).map(|d| d.addr)
    }
    /// Stop serving and wait for the servers to end (open connections are closed).
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_walk_are_deterministic() {
        let t0 = Instant::now();
        let mut g = Generator::new(
            Signal::Script {
                values: vec![1.0, 2.0, 3.0],
                step_ms: 100,
                repeat: true,
            },
            0,
            t0,
        );
        assert_eq!(g.step(t0), 1.0);
        assert_eq!(g.step(t0 + Duration::from_millis(150)), 2.0);
        assert_eq!(g.step(t0 + Duration::from_millis(350)), 1.0);
        let walk = Signal::RandomWalk {
            min: 0.0,
            max: 1.0,
            step: 0.1,
            seed: Some(7),
            start: None,
        };
        let mut a = Generator::new(walk.clone(), 0, t0);
        let mut b = Generator::new(walk, 0, t0);
        for _ in 0..100 {
            let (x, y) = (a.step(t0), b.step(t0));
            assert_eq!(x, y);
            assert!((0.0..=1.0).contains(&x));
        }
    }
}
