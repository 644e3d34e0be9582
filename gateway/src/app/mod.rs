//! How the gateway runs: start-up and wiring of its parts, the rules it loads, `demo`,
//! `replay`, the export of history as replay input, the `user` and `token` commands, and `check`.

pub mod access_cli;
pub mod check;
pub mod data_lock;
#[cfg(feature = "demo")]
pub mod demo;
pub mod export;
pub mod replay;
pub mod rules;
pub mod start;
