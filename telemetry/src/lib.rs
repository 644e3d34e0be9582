#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod clock;
pub mod codec;
pub mod ids;
pub mod incident;
pub mod reading;
pub mod regions;
pub mod time;
pub mod topic;
pub mod warning;

pub use catalogue::{
    AgentState, AgentStatus, Catalogue, Category, LimitKey, Limits, PointSpec, Quantity, SiteInfo,
    Unit,
};
pub use codec::{
    decode_batch, decode_catalogue, decode_status, encode_batch, BatchError, DecodeLimits,
    DecodedBatch, ReadingError, RefusedReading,
};
pub use ids::{AgentId, IdError, PointId, RegionCode, SiteId};
pub use incident::{
    chatters, EventKind, Incident, IncidentEvent, IncidentState, OverdueFor, Severity,
    CHATTER_RAISES, CHATTER_WINDOW,
};
pub use reading::{Batch, Position, Quality, Reading, Value};
pub use time::{format_time, parse_time, TimeError, Timestamp};
pub use topic::{Topic, TopicError, TopicScheme};
pub use warning::WarningLevel;
