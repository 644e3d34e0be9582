//! What a user or a token may do (its [`Role`]) and over which sites (its [`Scope`]s), and
//! the one check of both: pure, no I/O.

use std::fmt;
use std::str::FromStr;
use telemetry::{RegionCode, SiteId};

/// A site's region as the registry or its birth says (to place a `site:` scope within a
/// `region:` one).
pub type RegionOf<'a> = &'a (dyn Fn(&SiteId) -> Option<RegionCode> + Sync);

/// Roles, each allowed what the one below it is and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Also acknowledges, comments, assigns, shelves, takes points out of service, closes.
    Operator,
    /// Also reloads rules, posts weather documents, manages subscribers, parked deliveries,
    /// users and tokens, and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("role {s:?} is not one of viewer, operator, admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which sites a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `*`: every site.
    All,
    /// `region:CODE`: sites whose GB/T 2260 code starts with this prefix of 2 (province),
    /// 4 (city) or 6 (county) digits.
    Region(String),
    /// `site:ID`: one site.
    Site(SiteId),
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(Scope::All);
        }
        if let Some(code) = s.strip_prefix("region:") {
            if matches!(code.len(), 2 | 4 | 6) && code.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Scope::Region(code.to_string()));
            }
            return Err(format!(
                "scope {s:?}: a region is a GB/T 2260 prefix of 2, 4 or 6 digits"
            ));
        }
        if let Some(id) = s.strip_prefix("site:") {
            return SiteId::new(id)
                .map(Scope::Site)
                .map_err(|e| format!("scope {s:?}: {e}"));
        }
        Err(format!("scope {s:?} is not *, region:CODE or site:ID"))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Region(code) => write!(f, "region:{code}"),
            Scope::Site(id) => write!(f, "site:{id}"),
        }
    }
}

impl Scope {
    /// Whether this scope covers a site of `region` (its region from the registry or its
    /// birth; `None` when unknown: only `*` and `site:` cover it then).
    pub fn covers(&self, site: &SiteId, region: Option<&RegionCode>) -> bool {
        match self {
            Scope::All => true,
            Scope::Region(prefix) => region.is_some_and(|r| r.as_str().starts_with(prefix)),
            Scope::Site(id) => id == site,
        }
    }

    /// Whether everything this scope covers lies within `outer`. `region_of` gives a site's
    /// region, to place a `site:` scope within a `region:` one.
    pub fn within(&self, outer: &Scope, region_of: RegionOf<'_>) -> bool {
        match (outer, self) {
            (Scope::All, _) => true,
            (_, Scope::All) => false,
            (Scope::Region(o), Scope::Region(i)) => i.starts_with(o.as_str()),
            (Scope::Region(_), Scope::Site(id)) => outer.covers(id, region_of(id).as_ref()),
            (Scope::Site(o), Scope::Site(i)) => o == i,
            (Scope::Site(_), Scope::Region(_)) => false,
        }
    }
}

/// Parse `SCOPE[,SCOPE...]` (at least one).
pub fn parse_scopes(s: &str) -> Result<Vec<Scope>, String> {
    let scopes = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Scope::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err("at least one scope is needed (*, region:CODE or site:ID)".into());
    }
    Ok(scopes)
}

/// Scopes as they are stored and shown: `region:4105,site:mine-01`.
pub fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A role over scopes: what a user or a token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Grant {
    /// Every site, as an admin (open mode, the command line).
    pub fn everything() -> Grant {
        Grant {
            role: Role::Admin,
            scopes: vec![Scope::All],
        }
    }

    /// Whether any of the scopes covers the site.
    pub fn covers(&self, site: &SiteId, region: Option<&RegionCode>) -> bool {
        self.scopes.iter().any(|s| s.covers(site, region))
    }

    /// Whether the grant covers every site (`*`).
    pub fn covers_all(&self) -> bool {
        self.scopes.contains(&Scope::All)
    }

    /// Whether `other` asks no more than this grant holds: a role no higher, and each of its
    /// scopes within one of these (an admin grants only within its own).
    pub fn includes(&self, other: &Grant, region_of: RegionOf<'_>) -> bool {
        other.role <= self.role
            && other
                .scopes
                .iter()
                .all(|i| self.scopes.iter().any(|o| i.within(o, region_of)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> SiteId {
        SiteId::new(s).unwrap()
    }
    fn region(s: &str) -> RegionCode {
        RegionCode::new(s).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "*",
            "region:41",
            "region:4105",
            "region:410522",
            "site:mine-01",
        ] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "region:4",
            "region:41052",
            "region:41x",
            "county:41",
            "site:",
            "",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_scopes("region:4105, site:mine-01").unwrap(),
            vec![Scope::Region("4105".into()), Scope::Site(site("mine-01"))]
        );
        assert!(parse_scopes(" , ").is_err());
    }

    #[test]
    fn a_county_scope_covers_its_sites_only() {
        let county: Scope = "region:410522".parse().unwrap();
        assert!(county.covers(&site("a"), Some(&region("410522"))));
        assert!(!county.covers(&site("a"), Some(&region("410523"))));
        assert!(
            !county.covers(&site("a"), None),
            "an unknown region is not in a region"
        );
        let city: Scope = "region:4105".parse().unwrap();
        assert!(city.covers(&site("a"), Some(&region("410522"))));
        assert!(Scope::All.covers(&site("a"), None));
        assert!(Scope::Site(site("a")).covers(&site("a"), None));
    }

    #[test]
    fn an_admin_grants_only_within_its_own() {
        let region_of = |s: &SiteId| (s.as_str() == "mine-01").then(|| region("410522"));
        let city_admin = Grant {
            role: Role::Admin,
            scopes: vec![Scope::Region("4105".into())],
        };
        let ask = |role, scopes: &str| Grant {
            role,
            scopes: parse_scopes(scopes).unwrap(),
        };
        assert!(city_admin.includes(&ask(Role::Operator, "region:410522"), &region_of));
        assert!(city_admin.includes(&ask(Role::Admin, "region:4105,site:mine-01"), &region_of));
        assert!(!city_admin.includes(&ask(Role::Viewer, "region:41"), &region_of));
        assert!(!city_admin.includes(&ask(Role::Viewer, "*"), &region_of));
        assert!(!city_admin.includes(&ask(Role::Viewer, "site:plant-09"), &region_of));
        let operator = Grant {
            role: Role::Operator,
            scopes: vec![Scope::All],
        };
        assert!(!operator.includes(&ask(Role::Admin, "site:mine-01"), &region_of));
        assert!(Grant::everything().includes(&ask(Role::Admin, "*"), &region_of));
    }
}
