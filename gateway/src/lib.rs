#![doc = include_str!("../README.md")]

pub mod clock;
pub mod config;
pub mod core;
pub mod demo;
pub mod feeds;
pub mod forward;
pub mod http;
pub mod incident;
pub mod live;
pub mod metrics;
pub mod replay;
pub mod seq;
pub mod service;
pub mod store;
pub mod timeseries;
