//! The site-side program of the monitoring system: Modbus polling, MQTT device input, a
//! durable store-and-forward buffer, MQTT publishing per the contract, and a Modbus device
//! simulator. See `README.md` for the configuration and the moving parts.
#![forbid(unsafe_code)]

pub mod address;
pub mod agent;
/// The broker link (URL, TLS, credentials), shared with the gateway.
pub use broker_link as broker;
pub mod buffer;
pub mod check;
pub mod clock;
pub mod config;
pub mod decode;
pub mod device_time;
pub mod durable;
pub mod jt808;
pub mod jt808_sim;
pub mod metrics;
pub mod mqtt_input;
pub mod plan;
pub mod point_table;
pub mod poll;
pub mod probe;
pub mod publish;
pub mod serial_line;
pub mod sim;
mod sqlite_file;

pub use agent::{Agent, AgentError};
pub use clock::{Clock, SharedClock, SystemClock};
pub use config::{AgentConfig, ConfigError};
pub use sim::{SimError, Simulator, SimulatorConfig, SimulatorHandle};
