//! Event time in the engine: milliseconds since the epoch (as `i64`), and the mark of an
//! unset time.

use chrono::DateTime;
use telemetry::Timestamp;

/// "No time": an unset since/deadline.
pub(super) const NONE: i64 = i64::MIN;

#[inline]
pub(super) fn ms(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(super) fn ts(ms: i64) -> Timestamp {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
