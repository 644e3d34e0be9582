//! Judgement of the rule kinds for moving things: a geofence on a position, and driving time
//! accumulated from a speed (continuous with a rest reset, and within a sliding window).

use super::machine::Open;
use super::time::NONE;
use crate::rule::{Driving, Fence, Geofence};
use std::collections::VecDeque;
use telemetry::Value;

/// Driving spans kept per binding (bounded: the oldest merge into their successor).
const SPANS: usize = 1024;

/// What a driving-time binding keeps.
#[derive(Debug, Clone, Default)]
pub(super) struct DriveSt {
    /// Since when the vehicle has driven without a rest (NONE: it has rested).
    pub(super) cont_start: i64,
    /// Since when it has stood still (NONE: it is moving).
    pub(super) stopped_since: i64,
    /// Event time of the last judgement taken into account.
    pub(super) last_t: i64,
    /// Whether it was moving at `last_t`.
    pub(super) moving: bool,
    /// Driving spans (start, end), oldest first, within the window.
    pub(super) spans: VecDeque<(i64, i64)>,
}

impl DriveSt {
    pub(super) fn new() -> DriveSt {
        DriveSt {
            cont_start: NONE,
            stopped_since: NONE,
            last_t: NONE,
            moving: false,
            spans: VecDeque::new(),
        }
    }

    /// Take the time up to `t` into account; `speed`: a fresh reading's speed (None on a
    /// timer: the vehicle goes on as it was). Readings older than the last are not counted.
    pub(super) fn advance(&mut self, d: &Driving, t: i64, speed: Option<f64>) {
        if self.last_t != NONE && t < self.last_t {
            return;
        }
        if self.moving && self.last_t != NONE && t > self.last_t {
            match self.spans.back_mut() {
                Some(s) if s.1 == self.last_t => s.1 = t,
                _ => self.spans.push_back((self.last_t, t)),
            }
            if self.spans.len() > SPANS {
                let (a, _) = self.spans.pop_front().unwrap_or_default();
                if let Some(next) = self.spans.front_mut() {
                    next.0 = a;
                }
            }
        }
        let moving = speed.map_or(self.moving, |s| s > d.speed_above_kmh);
        if moving {
            if self.cont_start == NONE {
                self.cont_start = t;
            }
            self.stopped_since = NONE;
        } else {
            if self.stopped_since == NONE {
                self.stopped_since = t;
            }
            if self.cont_start != NONE && t.saturating_sub(self.stopped_since) >= d.rest_ms as i64 {
                self.cont_start = NONE;
            }
        }
        self.moving = moving;
        self.last_t = t;
        let from = t.saturating_sub(d.window_ms as i64);
        while self.spans.front().is_some_and(|s| s.1 <= from) {
            self.spans.pop_front();
        }
    }

    /// What a restart needs to know of this state beyond its last time: a change here is
    /// saved. A span that only grows while the vehicle goes on moving is not a change: after
    /// a restart the next reading extends it from the saved last time, as it would have.
    pub(super) fn mark(&self) -> (i64, i64, bool, usize, i64) {
        let first = self.spans.front().map_or(NONE, |s| s.0);
        (
            self.cont_start,
            self.stopped_since,
            self.moving,
            self.spans.len(),
            first,
        )
    }

    /// Continuous driving time (ms) at the last judgement: up to now, or up to the stop.
    pub(super) fn continuous(&self) -> i64 {
        if self.cont_start == NONE {
            return 0;
        }
        let end = if self.moving {
            self.last_t
        } else {
            self.stopped_since
        };
        end.saturating_sub(self.cont_start)
    }

    /// Driving time (ms) within the window ending at the last judgement.
    pub(super) fn in_window(&self, window_ms: u64) -> i64 {
        let from = self.last_t.saturating_sub(window_ms as i64);
        self.spans.iter().map(|&(a, b)| b - a.max(from)).sum()
    }

    /// When the driving within the sliding window falls below `max` (standing still): once
    /// the oldest driving beyond it has left the window.
    fn falls_below(&self, window_ms: u64, max: u64) -> i64 {
        let from = self.last_t.saturating_sub(window_ms as i64);
        let mut need = self.in_window(window_ms) - max as i64 + 1;
        for &(a, b) in &self.spans {
            let a = a.max(from);
            if need <= b - a {
                return (a + need).saturating_add(window_ms as i64);
            }
            need -= b - a;
        }
        NONE
    }

    /// Level 0: too long without a rest; level 1: too long within the window.
    pub(super) fn want(&self, d: &Driving) -> Option<(u8, u64)> {
        if let Some(max) = d.max_continuous_ms {
            if self.continuous() >= max as i64 {
                return Some((0, max));
            }
        }
        match d.max_in_window_ms {
            Some(max) if self.in_window(d.window_ms) >= max as i64 => Some((1, max)),
            _ => None,
        }
    }

    /// When the judgement may change without a reading: the continuous limit is reached, a
    /// rest completes, or (moving) the window's limit is reached.
    pub(super) fn deadline(&self, d: &Driving, open: Option<Open>) -> i64 {
        let mut best = NONE;
        let mut consider = |x: i64| {
            if x > self.last_t && (best == NONE || x < best) {
                best = x;
            }
        };
        if self.cont_start != NONE && !self.moving {
            consider(self.stopped_since.saturating_add(d.rest_ms as i64));
        }
        if self.moving && open.is_none() {
            if let Some(max) = d.max_continuous_ms {
                consider(self.cont_start.saturating_add(max as i64));
            }
            if let Some(max) = d.max_in_window_ms {
                let left = max as i64 - self.in_window(d.window_ms);
                consider(self.last_t.saturating_add(left.max(1)));
            }
        }
        if let (Some(o), Some(max)) = (open, d.max_in_window_ms) {
            if o.level == 1 && !self.moving {
                consider(self.falls_below(d.window_ms, max));
            }
        }
        best
    }
}

/// A geofence: whether the condition holds for the value, tracking since when the position
/// has been inside (`since`, for `dwell_ms`). `None`: the value is not a position.
pub(super) fn fence_holds(g: &Geofence, v: &Value, t: i64, since: &mut i64) -> Option<bool> {
    let Value::Position(p) = v else {
        return None;
    };
    let inside = g.area.contains(p.lat, p.lon);
    if !inside {
        *since = NONE;
    } else if *since == NONE {
        *since = t;
    }
    Some(match (g.trigger, g.dwell_ms) {
        (Fence::Leave, _) => !inside,
        (Fence::Enter, None) => inside,
        (Fence::Enter, Some(dwell)) => inside && t.saturating_sub(*since) >= dwell as i64,
    })
}

/// When a dwelling position completes its dwell.
pub(super) fn fence_deadline(g: &Geofence, since: i64, open: Option<Open>) -> i64 {
    match g.dwell_ms {
        Some(dwell) if since != NONE && open.is_none() => since.saturating_add(dwell as i64),
        _ => NONE,
    }
}
