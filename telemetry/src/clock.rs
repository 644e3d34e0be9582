//! The clock, injected: nothing in the system reads the time by itself. The system clock in
//! production; a manual clock in tests and in `replay` (where it follows the event time of the
//! input).

use crate::time::Timestamp;
use std::sync::{Arc, Mutex};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().expect("clock lock") = at;
    }
    /// Move forward to `at` (never backwards).
    pub fn advance_to(&self, at: Timestamp) {
        let mut t = self.0.lock().expect("clock lock");
        if at > *t {
            *t = at;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
