//! The core's heartbeat, for `/readyz` and the service manager's watchdog.

use std::time::Instant;

/// The core's heartbeat, for `/readyz` and the service manager's watchdog: the core loop
/// marks each turn (a tick at least every 500 ms, a message group, an action), so a core
/// that is stuck, or ended, shows as stalled. Measured on the monotonic clock of the process.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    last_ms: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            origin: Instant::now(),
            last_ms: Default::default(),
            ended: Default::default(),
        }
    }
}

impl Liveness {
    /// The core turned.
    pub fn mark(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
    /// The core loop ended.
    pub fn end(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// `Some(ms since the last turn)` when that is more than `limit_ms`, or the core ended.
    pub fn stalled_for_ms(&self, limit_ms: u64) -> Option<u64> {
        let since = (self.origin.elapsed().as_millis() as u64)
            .saturating_sub(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        (since > limit_ms || self.ended.load(std::sync::atomic::Ordering::Relaxed)).then_some(since)
    }
}
