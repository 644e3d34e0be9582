#![doc = include_str!("../README.md")]

// In the order a reading travels: it enters (ingest), is judged and becomes incidents
// (core), is kept (store, timeseries), leaves (outbox), and is shown (api); app wires it all.
pub mod access;
pub mod api;
pub mod app;
pub mod core;
pub mod ingest;
pub mod outbox;
pub mod store;
pub mod timeseries;

pub mod clock;
pub mod config;
pub mod metrics;
/// How every part calls out over HTTP (TLS per target, no redirects, bounded bodies).
pub mod outbound;
pub mod supervise;
