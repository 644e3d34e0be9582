//! The clock, injected: library logic never reads the system time by itself (defined once,
//! in `telemetry::clock`).

pub use telemetry::clock::{Clock, ManualClock, SharedClock, SystemClock};
