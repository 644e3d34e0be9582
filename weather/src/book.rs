//! The warning book: the set of warnings in force, kept by applying alerts and advancing an
//! injected clock. Deterministic: the same alerts at the same times give the same book.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde::Serialize;
use telemetry::Timestamp;

use crate::cap::{AlertKey, CapAlert, MsgType, Status};
use crate::cenc::CencReport;
use crate::geo::haversine_km;
use crate::warning::{warnings_from_cap, SiteLocation, Warning, WarningSource, WeatherConfig};

/// What applying an alert did, in one word (a small fixed set: fit for a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// At least one warning is now in force.
    Activated,
    /// Its warnings take effect later (`effective` lies ahead).
    Scheduled,
    /// Its warnings had all expired already: taken, nothing active.
    Expired,
    /// A cancel: the referenced warnings ended.
    Cancelled,
    /// A cancel of alerts with nothing in force (unknown, expired, or already ended): taken,
    /// nothing active; a later arrival of the cancelled alert is ignored.
    NothingToCancel,
    /// The same alert (sender + identifier) was applied before: no change.
    Repeat,
    /// An update or cancel of this alert came first: taken, nothing active.
    Superseded,
    /// `status` is not `Actual` (Exercise, System, Test, Draft): taken, nothing active.
    NotActual,
    /// `msgType` Ack or Error, or an alert without `<info>`: nothing to do.
    NoWarnings,
    /// Earthquakes below the first step of the earthquake table.
    BelowThreshold,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Activated => "activated",
            Outcome::Scheduled => "scheduled",
            Outcome::Expired => "expired",
            Outcome::Cancelled => "cancelled",
            Outcome::NothingToCancel => "nothing_to_cancel",
            Outcome::Repeat => "repeat",
            Outcome::Superseded => "superseded",
            Outcome::NotActual => "not_actual",
            Outcome::NoWarnings => "no_warnings",
            Outcome::BelowThreshold => "below_threshold",
        }
    }
}

/// Warnings that came into force and that left it. A warning replaced under the same id
/// appears in both (the old one in `ended`, the new one in `started`). Points of the sites
/// these touch are to be re-evaluated at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Change {
    pub started: Vec<Warning>,
    pub ended: Vec<Warning>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.ended.is_empty()
    }
    fn merge(&mut self, other: Change) {
        self.started.extend(other.started);
        self.ended.extend(other.ended);
    }
}

/// The result of [`WarningBook::apply`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub outcome: Outcome,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// Taking the alert would hold more warnings than `book.max_warnings`; nothing was changed.
    #[error("the warning book is full ({limit} warnings)")]
    Full { limit: usize },
    /// Taking the alert would hold more warnings of its sender than
    /// `book.max_warnings_per_sender`; nothing was changed.
    #[error("the warning book holds {limit} warnings of sender {sender:?} already")]
    SenderFull { sender: String, limit: usize },
}

#[derive(Debug, Clone)]
struct Entry {
    warning: Warning,
    /// In force (effective reached); else pending.
    started: bool,
}

#[derive(Debug, Clone)]
struct Remembered {
    forget_at: Timestamp,
    /// Updated or cancelled: a later arrival of the alert itself is not taken.
    superseded: bool,
}

/// The active (and pending) warnings.
#[derive(Debug, Clone)]
pub struct WarningBook {
    config: WeatherConfig,
    entries: BTreeMap<String, Entry>,
    remembered: BTreeMap<AlertKey, Remembered>,
    /// `remembered` by when it may be forgotten, for pruning and eviction.
    forget_order: BTreeSet<(Timestamp, AlertKey)>,
}

impl WarningBook {
    pub fn new(config: WeatherConfig) -> Self {
        WarningBook {
            config,
            entries: BTreeMap::new(),
            remembered: BTreeMap::new(),
            forget_order: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &WeatherConfig {
        &self.config
    }

    /// Apply a parsed CAP alert received at `now`:
    /// - `Alert`: its warnings are added (in force from `effective`, until `expires`);
    /// - `Update`: the alerts in `<references>` (matched by sender + identifier) end, and its
    ///   own warnings are added;
    /// - `Cancel`: the referenced alerts end;
    /// - a repeat of an alert already applied changes nothing; an alert whose update or
    ///   cancel came first is not taken; warnings already expired at `now` are not taken;
    ///   alerts whose status is not `Actual` are not taken.
    pub fn apply(&mut self, alert: &CapAlert, now: Timestamp) -> Result<Applied, BookError> {
        let key = alert.key();
        if let Some(r) = self.remembered.get(&key) {
            let outcome = if r.superseded {
                Outcome::Superseded
            } else {
                Outcome::Repeat
            };
            return Ok(Applied {
                outcome,
                change: Change::default(),
            });
        }
        if alert.status != Status::Actual {
            self.remember(key, now, now, false);
            return Ok(Applied {
                outcome: Outcome::NotActual,
                change: Change::default(),
            });
        }
        let warnings = match alert.msg_type {
            MsgType::Alert | MsgType::Update => warnings_from_cap(alert, &self.config),
            MsgType::Cancel | MsgType::Ack | MsgType::Error => Vec::new(),
        };
        self.check_room(&warnings)?;

        let mut change = Change::default();
        let mut cancelled_any = false;
        if matches!(alert.msg_type, MsgType::Update | MsgType::Cancel) {
            for r in &alert.references {
                let referenced = AlertKey::from(r);
                let ended = self.end_alert(&referenced);
                cancelled_any |= !ended.is_empty();
                change.ended.extend(ended);
                self.remember(referenced, now, now, true);
            }
        }
        let latest_expiry = warnings.iter().map(|w| w.expires).max().unwrap_or(now);
        let (added, outcome) = self.add(warnings, now);
        change.merge(added);
        self.remember(key, now, latest_expiry, false);

        let outcome = match alert.msg_type {
            MsgType::Cancel => {
                if cancelled_any {
                    Outcome::Cancelled
                } else {
                    Outcome::NothingToCancel
                }
            }
            MsgType::Ack | MsgType::Error => Outcome::NoWarnings,
            MsgType::Alert | MsgType::Update => outcome,
        };
        Ok(Applied { outcome, change })
    }

    /// Apply a CENC earthquake report received at `now`. Each quake is its own alert
    /// (sender `CENC`, its id): a quake seen before with the same content is a repeat, with
    /// changed content (a revised magnitude) it replaces the earlier warning; a formal report
    /// ends the automatic report of the same quake (origin times within
    /// `earthquake.same_quake_window_s`, epicentres within `earthquake.same_quake_distance_km`).
    pub fn apply_cenc(
        &mut self,
        report: &CencReport,
        now: Timestamp,
    ) -> Result<Applied, BookError> {
        let mut warnings = Vec::new();
        let mut below = 0;
        for q in &report.quakes {
            match q.to_warning(&self.config) {
                Some(w) => warnings.push(w),
                None => below += 1,
            }
        }
        self.check_room(&warnings)?;
        let mut change = Change::default();
        let mut outcomes = Vec::new();
        for w in warnings {
            if self.entries.get(&w.id).is_some_and(|e| e.warning == w) {
                outcomes.push(Outcome::Repeat);
                continue;
            }
            if w.source == (WarningSource::Cenc { automatic: false }) {
                let window =
                    Duration::seconds(i64::from(self.config.earthquake.same_quake_window_s));
                let max_km = self.config.earthquake.same_quake_distance_km;
                let automatic: Vec<String> = self
                    .entries
                    .values()
                    .filter(|e| {
                        e.warning.source == WarningSource::Cenc { automatic: true }
                            && e.warning.id != w.id
                    })
                    .filter(|e| (e.warning.effective - w.effective).abs() <= window)
                    .filter(|e| match (e.warning.circles.first(), w.circles.first()) {
                        (Some(a), Some(b)) => haversine_km(a.center, b.center) <= max_km,
                        _ => false,
                    })
                    .map(|e| e.warning.id.clone())
                    .collect();
                for id in automatic {
                    if let Some(e) = self.entries.remove(&id) {
                        if e.started {
                            change.ended.push(e.warning);
                        }
                    }
                }
            }
            let (added, outcome) = self.add(vec![w], now);
            change.merge(added);
            outcomes.push(outcome);
        }
        if below > 0 {
            outcomes.push(Outcome::BelowThreshold);
        }
        let outcome = [
            Outcome::Activated,
            Outcome::Scheduled,
            Outcome::Repeat,
            Outcome::Expired,
            Outcome::BelowThreshold,
        ]
        .into_iter()
        .find(|o| outcomes.contains(o))
        .unwrap_or(Outcome::NoWarnings);
        Ok(Applied { outcome, change })
    }

    /// Move the book to `now`: pending warnings whose `effective` has come start, warnings
    /// whose `expires` has come end (at `expires`, exactly). Also forgets old alert identities.
    pub fn advance(&mut self, now: Timestamp) -> Change {
        let mut change = Change::default();
        let mut gone = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.warning.expires <= now {
                gone.push(id.clone());
            } else if !e.started && e.warning.effective <= now {
                e.started = true;
                change.started.push(e.warning.clone());
            }
        }
        for id in gone {
            if let Some(e) = self.entries.remove(&id) {
                if e.started {
                    change.ended.push(e.warning);
                }
            }
        }
        while let Some((t, key)) = self.forget_order.first().cloned() {
            if t > now {
                break;
            }
            self.forget_order.pop_first();
            self.remembered.remove(&key);
        }
        change
    }

    /// When [`advance`](Self::advance) next has something to do: the earliest `expires` of a
    /// warning in force or `effective` of a pending one.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.entries
            .values()
            .map(|e| {
                if e.started {
                    e.warning.expires
                } else {
                    e.warning.effective
                }
            })
            .min()
    }

    /// The warnings in force, highest level first, then newest `effective`, then id.
    pub fn active(&self) -> Vec<&Warning> {
        let mut v: Vec<&Warning> = self
            .entries
            .values()
            .filter(|e| e.started)
            .map(|e| &e.warning)
            .collect();
        v.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(b.effective.cmp(&a.effective))
                .then(a.id.cmp(&b.id))
        });
        v
    }

    /// Warnings taken whose `effective` lies ahead, by `effective`.
    pub fn pending(&self) -> Vec<&Warning> {
        let mut v: Vec<&Warning> = self
            .entries
            .values()
            .filter(|e| !e.started)
            .map(|e| &e.warning)
            .collect();
        v.sort_by(|a, b| a.effective.cmp(&b.effective).then(a.id.cmp(&b.id)));
        v
    }

    /// A warning in force, by id.
    pub fn get(&self, id: &str) -> Option<&Warning> {
        self.entries
            .get(id)
            .filter(|e| e.started)
            .map(|e| &e.warning)
    }

    /// The warnings in force that touch a site, in the order of [`active`](Self::active).
    pub fn warnings_for(&self, site: &SiteLocation) -> Vec<&Warning> {
        self.active()
            .into_iter()
            .filter(|w| w.affects(site))
            .collect()
    }

    /// How many warnings are held (in force and pending).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    // -----------------------------------------------------------------------------------------

    fn check_room(&self, warnings: &[Warning]) -> Result<(), BookError> {
        let new = warnings
            .iter()
            .filter(|w| !self.entries.contains_key(&w.id))
            .count();
        let limit = self.config.book.max_warnings;
        if self.entries.len() + new > limit {
            return Err(BookError::Full { limit });
        }
        let per_sender = self.config.book.max_warnings_per_sender;
        let mut senders: Vec<&str> = warnings.iter().map(|w| w.sender.as_str()).collect();
        senders.sort_unstable();
        senders.dedup();
        for sender in senders {
            let held = self
                .entries
                .values()
                .filter(|e| e.warning.sender == sender)
                .count();
            let adding = warnings
                .iter()
                .filter(|w| w.sender == sender && !self.entries.contains_key(&w.id))
                .count();
            if held + adding > per_sender {
                return Err(BookError::SenderFull {
                    sender: sender.to_string(),
                    limit: per_sender,
                });
            }
        }
        Ok(())
    }

    /// Add warnings at `now`; the outcome says what became of them.
    fn add(&mut self, warnings: Vec<Warning>, now: Timestamp) -> (Change, Outcome) {
        let mut change = Change::default();
        if warnings.is_empty() {
            return (change, Outcome::NoWarnings);
        }
        let (mut started, mut pending) = (false, false);
        for w in warnings {
            if w.expires <= now {
                continue;
            }
            let in_force = w.effective <= now;
            if let Some(old) = self.entries.remove(&w.id) {
                if old.started {
                    change.ended.push(old.warning);
                }
            }
            if in_force {
                change.started.push(w.clone());
                started = true;
            } else {
                pending = true;
            }
            self.entries.insert(
                w.id.clone(),
                Entry {
                    warning: w,
                    started: in_force,
                },
            );
        }
        let outcome = if started {
            Outcome::Activated
        } else if pending {
            Outcome::Scheduled
        } else {
            Outcome::Expired
        };
        (change, outcome)
    }

    /// End (remove) every warning of an alert; returns those that were in force.
    fn end_alert(&mut self, key: &AlertKey) -> Vec<Warning> {
        let ids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| &e.warning.alert == key)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.entries.remove(&id))
            .filter(|e| e.started)
            .map(|e| e.warning)
            .collect()
    }

    /// Remember an alert identity until `remember_for_h` after `max(now, until)`.
    fn remember(&mut self, key: AlertKey, now: Timestamp, until: Timestamp, superseded: bool) {
        let hold = Duration::hours(i64::from(self.config.book.remember_for_h));
        let mut forget_at = now.max(until) + hold;
        let mut superseded = superseded;
        if let Some(old) = self.remembered.remove(&key) {
            self.forget_order.remove(&(old.forget_at, key.clone()));
            forget_at = forget_at.max(old.forget_at);
            superseded |= old.superseded;
        }
        while self.remembered.len() >= self.config.book.max_remembered_alerts {
            let Some((_, oldest)) = self.forget_order.pop_first() else {
                break;
            };
            self.remembered.remove(&oldest);
        }
        self.forget_order.insert((forget_at, key.clone()));
        self.remembered.insert(
            key,
            Remembered {
                forget_at,
                superseded,
            },
        );
    }
}
