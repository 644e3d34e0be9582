//! The clock, injected: library logic never reads the system time by itself.

use std::sync::Arc;
use telemetry::Timestamp;

/// A source of wall-clock time for reading timestamps and status messages.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
