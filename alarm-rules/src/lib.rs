#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod api;
mod engine;
mod error;
mod glob;
mod message;
mod rule;
mod ruleset;

pub use api::*;
pub use engine::{Accumulated, AccumulatedState, Engine, EngineConfig, LevelSide, PointLevel};
pub use error::RuleError;
pub use message::{
    Comparison, Condition, FaultCause, LevelPhase, Message, PointTerms, TooOften, WarningTerms,
};
pub use ruleset::{RuleInfo, RuleSet, BUILTIN_FILES};
