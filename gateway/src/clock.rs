//! The gateway's clock, injected (defined once, in `telemetry::clock`).

pub use telemetry::clock::{Clock, ManualClock, SharedClock, SystemClock};
