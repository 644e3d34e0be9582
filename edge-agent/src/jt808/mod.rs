//! JT/T 808 terminals (issue 19): listeners that take vehicle terminals over TCP, and publish
//! their reports as readings of vehicle agents of their own (see `edge-agent/README.md`,
//! "JT/T 808 terminals").
//!
//! - [`config`]: `[[jt808]]` and its vehicles;
//! - [`session`]: the protocol of one connection, pure;
//! - [`points`]: decoded messages to readings, the vehicles' catalogue;
//! - [`auth`]: the persisted auth codes;
//! - [`server`]: the TCP listener and connection tasks.

pub mod auth;
pub mod config;
pub mod points;
pub mod server;
pub mod session;

pub use config::{Jt808Config, VehicleClass, VehicleConfig};
