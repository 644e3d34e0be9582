//! The generic per-cause state machine: open severity and level, with on- and off-delays
//! on event time. Every kind of cause (point, zone, agent) steps one.

use super::time::NONE;
use crate::api::TransitionKind;
use telemetry::Severity;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Open {
    pub(super) severity: Severity,
    pub(super) level: u8,
    pub(super) threshold: f64,
}

impl Open {
    /// At `severity`, with one level and no threshold (a cause that is on or off).
    pub(super) fn plain(severity: Severity) -> Open {
        Open {
            severity,
            level: 0,
            threshold: f64::NAN,
        }
    }
}

pub(super) type Want = Open;

#[derive(Debug, Clone, Copy)]
pub(super) struct Machine {
    pub(super) open: Option<Open>,
    /// Since when (event time, ms) a higher severity has been wanted without a break.
    pub(super) up_since: i64,
    /// Since when a lower severity (or none) has been wanted without a break.
    pub(super) down_since: i64,
}

impl Machine {
    pub(super) fn new() -> Machine {
        Machine {
            open: None,
            up_since: NONE,
            down_since: NONE,
        }
    }

    /// Feed what is wanted at time `t`. Returns the transition, with the open state after it
    /// (before it, for a clear).
    pub(super) fn step(
        &mut self,
        want: Option<Want>,
        t: i64,
        on_delay: i64,
        off_delay: i64,
    ) -> Option<(TransitionKind, Open)> {
        let cur = self.open.map(|o| o.severity);
        let new = want.map(|w| w.severity);
        match new.cmp(&cur) {
            std::cmp::Ordering::Greater => {
                self.down_since = NONE;
                if self.up_since == NONE {
                    self.up_since = t;
                }
                if t.saturating_sub(self.up_since) >= on_delay {
                    let w = want?;
                    self.up_since = NONE;
                    let kind = if self.open.is_some() {
                        TransitionKind::Escalated
                    } else {
                        TransitionKind::Raised
                    };
                    self.open = Some(w);
                    return Some((kind, w));
                }
                None
            }
            std::cmp::Ordering::Less => {
                self.up_since = NONE;
                if self.down_since == NONE {
                    self.down_since = t;
                }
                if t.saturating_sub(self.down_since) >= off_delay {
                    self.down_since = NONE;
                    let old = self.open?;
                    self.open = want;
                    return Some(match want {
                        None => (TransitionKind::Cleared, old),
                        Some(w) => (TransitionKind::Deescalated, w),
                    });
                }
                None
            }
            std::cmp::Ordering::Equal => {
                self.up_since = NONE;
                self.down_since = NONE;
                // Same severity, maybe another level (hysteresis follows the level in force).
                if let (Some(o), Some(w)) = (self.open.as_mut(), want) {
                    o.level = w.level;
                    o.threshold = w.threshold;
                }
                None
            }
        }
    }

    pub(super) fn deadline(&self, on_delay: i64, off_delay: i64) -> i64 {
        let mut d = i64::MAX;
        if self.up_since != NONE {
            d = d.min(self.up_since.saturating_add(on_delay));
        }
        if self.down_since != NONE {
            d = d.min(self.down_since.saturating_add(off_delay));
        }
        if d == i64::MAX {
            NONE
        } else {
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(sev: Severity) -> Option<Want> {
        Some(Open {
            severity: sev,
            level: 0,
            threshold: 1.0,
        })
    }

    #[test]
    fn machine_raises_at_once_without_delay_and_escalates() {
        let mut m = Machine::new();
        assert_eq!(m.step(None, 0, 0, 0), None);
        assert_eq!(
            m.step(w(Severity::Alarm), 10, 0, 0).map(|x| x.0),
            Some(TransitionKind::Raised)
        );
        assert_eq!(m.step(w(Severity::Alarm), 20, 0, 0), None);
        assert_eq!(
            m.step(w(Severity::Critical), 30, 0, 0).map(|x| x.0),
            Some(TransitionKind::Escalated)
        );
        assert_eq!(
            m.step(w(Severity::Alarm), 40, 0, 0).map(|x| x.0),
            Some(TransitionKind::Deescalated)
        );
        let (k, o) = m.step(None, 50, 0, 0).unwrap();
        assert_eq!((k, o.severity), (TransitionKind::Cleared, Severity::Alarm));
        assert_eq!(m.deadline(0, 0), NONE);
    }

    #[test]
    fn machine_delays_need_the_condition_without_a_break() {
        let mut m = Machine::new();
        assert_eq!(m.step(w(Severity::Alarm), 0, 100, 50), None);
        assert_eq!(m.deadline(100, 50), 100);
        assert_eq!(
            m.step(None, 60, 100, 50),
            None,
            "a break resets the on-delay"
        );
        assert_eq!(m.deadline(100, 50), NONE);
        assert_eq!(m.step(w(Severity::Alarm), 70, 100, 50), None);
        assert_eq!(
            m.step(w(Severity::Alarm), 170, 100, 50).map(|x| x.0),
            Some(TransitionKind::Raised)
        );
        assert_eq!(m.step(None, 200, 100, 50), None);
        assert_eq!(m.step(None, 249, 100, 50), None);
        assert_eq!(
            m.step(None, 250, 100, 50).map(|x| x.0),
            Some(TransitionKind::Cleared)
        );
    }
}
