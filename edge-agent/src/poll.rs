//! Modbus polling of one device.
//!
//! Every network call runs under `tokio::time::timeout`. A failed poll never stops the agent:
//! the points of the failed request get `bad` readings with the reason ("modbus timeout",
//! "modbus exception IllegalDataAddress", "modbus connect failed: ..."). After a timeout or a
//! transport error the connection is dropped and made again (a late answer would otherwise be
//! taken for the next request's); connecting again backs off from 250 ms up to 30 s while the
//! device stays unreachable, and meanwhile each poll reports the last connect error.

use crate::clock::SharedClock;
use crate::config::{DeviceConfig, Function, Parity, PointConfig, Transport};
use crate::decode::{decode_registers, scaled, RawValue};
use crate::metrics::AgentMetrics;
use crate::plan::{plan_requests, ReadRequest};
use std::time::Duration;
use telemetry::{Reading, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::slave::SlaveContext as _;
use tokio_modbus::Slave;
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why a read failed, as a metric kind and a reading reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollFailure {
    /// `timeout`, `exception`, `transport`, `protocol`, `connect`.
    pub kind: &'static str,
    pub reason: String,
    /// Whether the connection is no longer usable.
    pub drop_link: bool,
}

/// The data of one read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadData {
    Bits(Vec<bool>),
    Registers(Vec<u16>),
}

/// The items (bits or registers) of `data`, the answer to `req`, that hold point `p`.
pub fn point_items(p: &PointConfig, req: &ReadRequest, data: &ReadData) -> ReadData {
    let off = usize::from(p.address - req.address);
    match data {
        ReadData::Bits(bits) => ReadData::Bits(bits[off..off + 1].to_vec()),
        ReadData::Registers(regs) => {
            ReadData::Registers(regs[off..off + usize::from(p.width())].to_vec())
        }
    }
}

/// The value of point `p` out of `data`, the answer to `req`: decoded, scaled and finite, or
/// why not.
pub fn point_value(p: &PointConfig, req: &ReadRequest, data: &ReadData) -> Result<Value, String> {
    match point_items(p, req, data) {
        ReadData::Bits(bits) => Ok(Value::Bool(bits[0])),
        ReadData::Registers(regs) => match decode_registers(&regs, p.ty(), p.order, p.bit) {
            Ok(RawValue::Bool(b)) => Ok(Value::Bool(b)),
            Ok(raw) => {
                let v = scaled(raw, p.scale, p.offset);
                if v.is_finite() {
                    Ok(Value::Number(v))
                } else {
                    Err(format!("value of {} is not a finite number", p.ty()))
                }
            }
            Err(e) => Err(e.to_string()),
        },
    }
}

/// Polls one device at its `poll_interval_ms`.
pub struct DevicePoller {
    device: DeviceConfig,
    plan: Vec<ReadRequest>,
    ctx: Option<Context>,
    backoff: retry::Backoff,
    next_connect: Instant,
    last_connect_error: Option<String>,
    metrics: AgentMetrics,
    clock: SharedClock,
}

impl DevicePoller {
    pub fn new(device: DeviceConfig, metrics: AgentMetrics, clock: SharedClock) -> Self {
        let plan = plan_requests(&device.points);
        metrics
            .device_link_up
            .with_label_values(&[device.name.as_str()])
            .set(0);
        DevicePoller {
            device,
            plan,
            ctx: None,
            backoff: retry::Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            next_connect: Instant::now(),
            last_connect_error: None,
            metrics,
            clock,
        }
    }

    pub fn plan(&self) -> &[ReadRequest] {
        &self.plan
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.device.timeout_ms)
    }

    /// Open the device's serial port (`transport = "rtu_serial"`).
    fn open_serial(device: &DeviceConfig) -> Result<Context, String> {
        let path = device.serial_port.as_deref().unwrap_or_default();
        let builder = tokio_serial::new(path, device.baud)
            .data_bits(if device.data_bits == 7 {
                tokio_serial::DataBits::Seven
            } else {
                tokio_serial::DataBits::Eight
            })
            .parity(match device.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .stop_bits(if device.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            })
            .timeout(Duration::from_millis(device.timeout_ms));
        let port =
            tokio_serial::SerialStream::open(&builder).map_err(|e| format!("{path}: {e}"))?;
        Ok(tokio_modbus::client::rtu::attach_slave(
            port,
            Slave(device.unit_id),
        ))
    }

    /// Hand the connection over (a serial line passes one port between its devices).
    pub fn take_link(&mut self) -> Option<Context> {
        self.ctx.take()
    }

    /// Take a connection handed over by another device of the same line.
    pub fn give_link(&mut self, ctx: Option<Context>) {
        self.ctx = ctx;
    }

    pub fn device(&self) -> &DeviceConfig {
        &self.device
    }

    pub(crate) fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    async fn connect(device: &DeviceConfig) -> Result<Context, String> {
        if device.transport == Transport::RtuSerial {
            return Self::open_serial(device);
        }
        let host = device.host.as_str();
        let port = device.port;
        let t = Duration::from_millis(device.timeout_ms);
        let addr = timeout(t, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("resolving {host} timed out"))?
            .map_err(|e| format!("resolving {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let stream = timeout(t, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let slave = Slave(device.unit_id);
        Ok(match device.transport {
            Transport::Tcp => tokio_modbus::client::tcp::attach_slave(stream, slave),
            Transport::RtuOverTcp | Transport::RtuSerial => {
                tokio_modbus::client::rtu::attach_slave(stream, slave)
            }
        })
    }

    fn drop_link(&mut self) {
        if self.ctx.take().is_some() {
            self.metrics
                .device_link_up
                .with_label_values(&[self.device.name.as_str()])
                .set(0);
        }
    }

    async fn call(&mut self, req: &ReadRequest) -> Result<ReadData, PollFailure> {
        let t = self.timeout();
        let unit = req.unit.unwrap_or(self.device.unit_id);
        let ctx = self.ctx.as_mut().expect("connected");
        ctx.set_slave(Slave(unit));
        let (a, n) = (req.address, req.count);
        let fut = async {
            match req.function {
                Function::Coil => ctx.read_coils(a, n).await.map(|r| r.map(ReadData::Bits)),
                Function::DiscreteInput => ctx
                    .read_discrete_inputs(a, n)
                    .await
                    .map(|r| r.map(ReadData::Bits)),
                Function::Holding => ctx
                    .read_holding_registers(a, n)
                    .await
                    .map(|r| r.map(ReadData::Registers)),
                Function::Input => ctx
                    .read_input_registers(a, n)
                    .await
                    .map(|r| r.map(ReadData::Registers)),
            }
        };
        let answer = timeout(t, fut).await;
        if self.device.transport == Transport::RtuSerial {
            // The line's silence before the next frame, whoever sends it.
            tokio::time::sleep(self.device.frame_gap()).await;
        }
        match answer {
            Err(_) => Err(PollFailure {
                kind: "timeout",
                reason: "modbus timeout".into(),
                drop_link: true,
            }),
            Ok(Err(tokio_modbus::Error::Transport(e))) => Err(PollFailure {
                kind: "transport",
                reason: format!("modbus transport error: {e}"),
                drop_link: true,
            }),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(PollFailure {
                kind: "protocol",
                reason: format!("modbus protocol error: {e}"),
                drop_link: true,
            }),
            Ok(Ok(Err(code))) => Err(PollFailure {
                kind: "exception",
                reason: format!("modbus exception {code:?}"),
                drop_link: false,
            }),
            Ok(Ok(Ok(data))) => {
                let got = match &data {
                    ReadData::Bits(b) => b.len(),
                    ReadData::Registers(r) => r.len(),
                };
                if got < usize::from(n) {
                    return Err(PollFailure {
                        kind: "protocol",
                        reason: format!("modbus short response: {got} of {n} items"),
                        drop_link: false,
                    });
                }
                Ok(data)
            }
        }
    }

    /// Run one read request, connecting first if needed and trying again after a timeout or
    /// a broken connection up to `retries` times.
    pub async fn read(&mut self, req: &ReadRequest) -> Result<ReadData, PollFailure> {
        let mut last = None;
        for _ in 0..=self.device.retries {
            if self.ctx.is_none() {
                if Instant::now() < self.next_connect {
                    return Err(last.unwrap_or_else(|| PollFailure {
                        kind: "connect",
                        reason: format!(
                            "modbus connect failed: {}",
                            self.last_connect_error
                                .as_deref()
                                .unwrap_or("waiting to reconnect")
                        ),
                        drop_link: false,
                    }));
                }
                match Self::connect(&self.device).await {
                    Ok(ctx) => {
                        tracing::info!(device = %self.device.name, "modbus device connected");
                        self.ctx = Some(ctx);
                        self.backoff.reset();
                        self.last_connect_error = None;
                        self.metrics
                            .device_link_up
                            .with_label_values(&[self.device.name.as_str()])
                            .set(1);
                    }
                    Err(e) => {
                        if self.last_connect_error.as_deref() != Some(e.as_str()) {
                            tracing::warn!(device = %self.device.name, error = %e, "modbus connect failed");
                        }
                        self.next_connect = Instant::now() + self.backoff.next_delay();
                        self.last_connect_error = Some(e.clone());
                        return Err(PollFailure {
                            kind: "connect",
                            reason: format!("modbus connect failed: {e}"),
                            drop_link: false,
                        });
                    }
                }
            }
            match self.call(req).await {
                Ok(d) => return Ok(d),
                Err(f) if f.drop_link => {
                    tracing::debug!(device = %self.device.name, reason = %f.reason, "modbus link dropped");
                    self.drop_link();
                    last = Some(f);
                }
                Err(f) => return Err(f),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Poll every planned request once; one reading per point.
    pub async fn poll_once(&mut self) -> Vec<Reading> {
        let mut out = Vec::with_capacity(self.device.points.len());
        let plan = self.plan.clone();
        for req in &plan {
            let started = Instant::now();
            let result = self.read(req).await;
            let elapsed = started.elapsed().as_secs_f64();
            let ts = self.clock.now();
            match result {
                Ok(data) => {
                    self.metrics.polls_total.with_label_values(&["ok"]).inc();
                    self.metrics
                        .poll_duration_seconds
                        .with_label_values(&["ok"])
                        .observe(elapsed);
                    for &i in &req.points {
                        let p = &self.device.points[i];
                        let value = point_value(p, req, &data);
                        match value {
                            Ok(v) => out.push(Reading::good(p.point.clone(), ts, v)),
                            Err(reason) => {
                                self.metrics
                                    .poll_errors_total
                                    .with_label_values(&["decode"])
                                    .inc();
                                out.push(Reading::bad(p.point.clone(), ts, reason))
                            }
                        }
                    }
                }
                Err(f) => {
                    self.metrics.polls_total.with_label_values(&["error"]).inc();
                    self.metrics
                        .poll_errors_total
                        .with_label_values(&[f.kind])
                        .inc();
                    self.metrics
                        .poll_duration_seconds
                        .with_label_values(&["error"])
                        .observe(elapsed);
                    for &i in &req.points {
                        out.push(Reading::bad(
                            self.device.points[i].point.clone(),
                            ts,
                            f.reason.clone(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Poll at the device's interval until `cancel`, sending readings to `tx`. When `tx` is
    /// full the poller waits (back-pressure: polls slip rather than readings being lost).
    pub async fn run(mut self, tx: mpsc::Sender<Reading>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.device.poll_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let readings = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.poll_once() => r,
            };
            for r in readings {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    sent = tx.send(r) => if sent.is_err() { return },
                }
                self.metrics.readings_total.inc();
            }
        }
        self.drop_link();
    }
}
