//! Identifiers: site, agent and point ids, and GB/T 2260 region codes.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} id is empty")]
    Empty { kind: &'static str },
    #[error("{kind} id {id:?} is longer than 64 characters")]
    TooLong { kind: &'static str, id: String },
    #[error("{kind} id {id:?} has a character outside {allowed}")]
    BadChar {
        kind: &'static str,
        id: String,
        allowed: &'static str,
    },
    #[error("region {0:?} is not a six-digit GB/T 2260 code")]
    BadRegion(String),
}

fn check(
    kind: &'static str,
    s: &str,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
    allowed: &'static str,
) -> Result<(), IdError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(IdError::Empty { kind });
    }
    // The charset first: it is ASCII, so once it holds, bytes are characters and the length
    // limit (in characters) can be judged on bytes.
    if !first(b[0]) || !b[1..].iter().all(|&c| rest(c)) {
        return Err(IdError::BadChar {
            kind,
            id: crate::time::truncate(s),
            allowed,
        });
    }
    if b.len() > 64 {
        return Err(IdError::TooLong {
            kind,
            id: crate::time::truncate(s),
        });
    }
    Ok(())
}

fn site_first(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
fn site_rest(c: u8) -> bool {
    site_first(c) || c == b'_' || c == b'-'
}
fn point_first(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn point_rest(c: u8) -> bool {
    point_first(c) || matches!(c, b'_' | b'.' | b':' | b'-')
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $kind:literal, $first:ident, $rest:ident, $allowed:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($kind, &s, $first, $rest, $allowed)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A site: `[a-z0-9][a-z0-9_-]{0,63}`.
    SiteId, "site", site_first, site_rest, "[a-z0-9][a-z0-9_-]"
);
id_type!(
    /// An edge agent of a site: `[a-z0-9][a-z0-9_-]{0,63}`.
    AgentId, "agent", site_first, site_rest, "[a-z0-9][a-z0-9_-]"
);
id_type!(
    /// A point, unique within its site: `[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}`.
    PointId, "point", point_first, point_rest, "[A-Za-z0-9][A-Za-z0-9_.:-]"
);

/// A six-digit GB/T 2260 administrative division code, e.g. `410522`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl RegionCode {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.len() == 6 && s.bytes().all(|c| c.is_ascii_digit()) {
            Ok(Self(s))
        } else {
            Err(IdError::BadRegion(crate::time::truncate(&s)))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The significant prefix: `410000` -> `41`, `410500` -> `4105`, `410522` -> `410522`.
    pub fn prefix(&self) -> &str {
        let s = self.0.as_str();
        if s.ends_with("0000") {
            &s[..2]
        } else if s.ends_with("00") {
            &s[..4]
        } else {
            s
        }
    }
    /// Whether a warning for `self` covers a site in `other`.
    pub fn covers(&self, other: &RegionCode) -> bool {
        other.0.starts_with(self.prefix())
    }
}
impl TryFrom<String> for RegionCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}
impl From<RegionCode> for String {
    fn from(r: RegionCode) -> String {
        r.0
    }
}
impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids() {
        assert!(SiteId::new("mine-01").is_ok());
        assert!(SiteId::new("0").is_ok());
        assert_eq!(SiteId::new(""), Err(IdError::Empty { kind: "site" }));
        assert!(matches!(SiteId::new("Mine"), Err(IdError::BadChar { .. })));
        assert!(matches!(SiteId::new("-mine"), Err(IdError::BadChar { .. })));
        assert!(matches!(SiteId::new("a/b"), Err(IdError::BadChar { .. })));
        assert!(SiteId::new("a".repeat(64)).is_ok());
        assert!(matches!(
            SiteId::new("a".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn point_ids() {
        assert!(PointId::new("CH4-101").is_ok());
        assert!(PointId::new("plc1:40001.3").is_ok());
        assert!(matches!(PointId::new(".x"), Err(IdError::BadChar { .. })));
        assert!(matches!(PointId::new("a b"), Err(IdError::BadChar { .. })));
        assert!(matches!(PointId::new("甲烷"), Err(IdError::BadChar { .. })));
    }

    #[test]
    fn regions() {
        let city = RegionCode::new("410500").unwrap();
        let county = RegionCode::new("410522").unwrap();
        let province = RegionCode::new("410000").unwrap();
        let other = RegionCode::new("410622").unwrap();
        assert!(city.covers(&county));
        assert!(province.covers(&county));
        assert!(!city.covers(&other));
        assert!(county.covers(&county));
        assert!(!county.covers(&city));
        assert!(RegionCode::new("41052").is_err());
    }
}
