//! A serial line (RS-485): several devices (units) on one port, polled in turn. One task owns
//! the line; the open port passes from device to device, so that no two requests are ever on
//! the wire at once, and each transaction is followed by the line's silence (`frame_gap_ms`).

use crate::poll::DevicePoller;
use std::time::Duration;
use telemetry::Reading;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Poll `pollers` (the devices of one serial port) each at its own interval, one at a time,
/// earliest due first, until `cancel`. Readings go to `tx` (waiting when it is full).
pub async fn run_line(
    mut pollers: Vec<DevicePoller>,
    tx: mpsc::Sender<Reading>,
    cancel: CancellationToken,
) {
    if pollers.is_empty() {
        return;
    }
    let start = Instant::now();
    let mut due: Vec<Instant> = vec![start; pollers.len()];
    let mut link = None;
    loop {
        let (i, at) = due
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, t)| *t)
            .expect("a device");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(at) => {}
        }
        let p = &mut pollers[i];
        p.give_link(link.take());
        let readings = tokio::select! {
            _ = cancel.cancelled() => break,
            r = p.poll_once() => r,
        };
        link = p.take_link();
        let interval = Duration::from_millis(p.device().poll_interval_ms);
        // A late poll delays the next (as the TCP pollers' MissedTickBehavior::Delay).
        due[i] = (at + interval).max(Instant::now());
        for r in readings {
            tokio::select! {
                _ = cancel.cancelled() => return,
                sent = tx.send(r) => if sent.is_err() { return },
            }
            pollers[i].metrics().readings_total.inc();
        }
    }
}
