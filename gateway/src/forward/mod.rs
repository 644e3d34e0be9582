//! Forwarding incident events upstream and notifying subscribers (skeleton; see the issue
//! "Forwarding to the supervision platform").

use serde::{Deserialize, Serialize};

/// `[forwarding]` in the gateway config; `HRS_PLATFORM_URL` adds the platform endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardingConfig {}
