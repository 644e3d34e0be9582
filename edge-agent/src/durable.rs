//! Readings handed to the batcher by an input that must hear when they are on disk.

use telemetry::Reading;

/// Readings whose sender waits to hear that they are stored durably: `done` gets `true` once
/// the batch that holds them is in the buffer (on disk), `false` if storing it failed. JT/T 808
/// terminals are answered only then, so a report they have deleted is on the agent's disk.
#[derive(Debug)]
pub struct DurableReadings {
    pub readings: Vec<Reading>,
    pub done: Option<tokio::sync::oneshot::Sender<bool>>,
}
