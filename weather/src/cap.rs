//! Safe parsing of CAP 1.2 and 1.1 alerts (OASIS Common Alerting Protocol).
//!
//! Safety: a document with a DTD (`<!DOCTYPE ...>`, and with it any entity declaration) is
//! refused before anything in it is looked at; entities other than the five predefined ones
//! and character references are refused; nothing is ever fetched. Size, depth, element count
//! and the counts of `<info>`, `<area>` and polygon vertices are bounded by [`CapLimits`].

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde::{Deserialize, Serialize};
use telemetry::{parse_time, RegionCode, Timestamp};

use crate::encoding::{decode_xml, EncodingError};
use crate::geo::{Circle, GeoError, Polygon};

pub const CAP_1_2_NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
pub const CAP_1_1_NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.1";

/// The `valueName`s of a `<geocode>` that carries a GB/T 2260 administrative division code.
pub const REGION_GEOCODE_NAMES: [&str; 4] = ["GB/T 2260", "GB2260", "ADCODE", "行政区划代码"];

/// Bounds on what a CAP document may hold. Config keys carry their units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapLimits {
    /// The largest document taken, in bytes.
    pub max_document_bytes: usize,
    /// The deepest element nesting taken (CAP itself needs 5; signatures need a few more).
    pub max_depth: usize,
    /// The most elements in a document, of any namespace.
    pub max_elements: usize,
    pub max_info_blocks: usize,
    /// The most `<area>` blocks in one `<info>`.
    pub max_areas_per_info: usize,
    pub max_polygon_vertices: usize,
}

impl Default for CapLimits {
    fn default() -> Self {
        CapLimits {
            max_document_bytes: 1024 * 1024,
            max_depth: 32,
            max_elements: 50_000,
            max_info_blocks: 64,
            max_areas_per_info: 1024,
            max_polygon_vertices: 20_000,
        }
    }
}

impl CapLimits {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_document_bytes < 1024 {
            return Err("max_document_bytes must be at least 1024".into());
        }
        if self.max_depth < 6 {
            return Err("max_depth must be at least 6 (CAP nests 5 deep)".into());
        }
        for (name, v) in [
            ("max_elements", self.max_elements),
            ("max_info_blocks", self.max_info_blocks),
            ("max_areas_per_info", self.max_areas_per_info),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.max_polygon_vertices < 4 {
            return Err("max_polygon_vertices must be at least 4".into());
        }
        Ok(())
    }
}

/// Why a CAP document was refused. Every variant is the sender's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapError {
    #[error("document is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("document has a DTD (DOCTYPE and entity declarations are refused, never resolved)")]
    HasDtd,
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("not a CAP alert: {0}")]
    NotCap(String),
    #[error("document exceeds a limit: {0}")]
    Limit(String),
    #[error("missing required element <{element}>{context}")]
    Missing {
        element: &'static str,
        context: String,
    },
    #[error("<{element}>{context}: {reason}")]
    Invalid {
        element: &'static str,
        context: String,
        reason: String,
    },
}

impl CapError {
    /// A short stable label for metrics and logs (a small fixed set).
    pub fn code(&self) -> &'static str {
        match self {
            CapError::TooLarge { .. } => "too_large",
            CapError::HasDtd => "dtd",
            CapError::Encoding(_) => "encoding",
            CapError::Xml(_) => "malformed_xml",
            CapError::NotCap(_) => "not_cap",
            CapError::Limit(_) => "limit",
            CapError::Missing { .. } => "missing_element",
            CapError::Invalid { .. } => "invalid_element",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CapVersion {
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.2")]
    V1_2,
}

macro_rules! cap_enum {
    ($(#[$m:meta])* $name:ident, $elem:literal { $($v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name { $($v),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }
            fn parse(s: &str, context: String) -> Result<Self, CapError> {
                match s {
                    $(stringify!($v) => Ok($name::$v),)+
                    _ => Err(CapError::Invalid {
                        element: $elem,
                        context,
                        reason: format!("{:?} is not one of {}", clip(s), [$(stringify!($v)),+].join(", ")),
                    }),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_enum!(
    /// `<status>`: only `Actual` alerts make active warnings.
    Status, "status" { Actual, Exercise, System, Test, Draft }
);
cap_enum!(
    /// `<msgType>`.
    MsgType, "msgType" { Alert, Update, Cancel, Ack, Error }
);
cap_enum!(Scope, "scope" { Public, Restricted, Private });
cap_enum!(
    /// `<severity>` of an `<info>`; ordered from least to most severe.
    CapSeverity, "severity" { Unknown, Minor, Moderate, Severe, Extreme }
);

/// An earlier alert named in `<references>`: `sender,identifier,sent`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AlertRef {
    pub sender: String,
    pub identifier: String,
    /// The `sent` of the referenced alert as written (not interpreted).
    pub sent: Option<String>,
}

/// A `valueName` / `value` pair (`<eventCode>`, `<parameter>`, `<geocode>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapArea {
    pub description: String,
    pub polygons: Vec<Polygon>,
    pub circles: Vec<Circle>,
    pub geocodes: Vec<NamedValue>,
    /// The GB/T 2260 codes among the geocodes (see [`REGION_GEOCODE_NAMES`]). A 9- or 12-digit
    /// statistical code is taken as its 6-digit county (the area is widened, never narrowed).
    pub regions: Vec<RegionCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapInfo {
    /// `<language>`, `en-US` where absent (the CAP default).
    pub language: String,
    pub categories: Vec<String>,
    pub event: String,
    pub urgency: String,
    pub severity: CapSeverity,
    pub certainty: String,
    pub event_codes: Vec<NamedValue>,
    pub effective: Option<Timestamp>,
    pub onset: Option<Timestamp>,
    pub expires: Option<Timestamp>,
    pub sender_name: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub parameters: Vec<NamedValue>,
    pub areas: Vec<CapArea>,
}

/// A parsed, checked CAP alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapAlert {
    pub version: CapVersion,
    pub identifier: String,
    pub sender: String,
    pub sent: Timestamp,
    pub status: Status,
    pub msg_type: MsgType,
    pub scope: Scope,
    pub source: Option<String>,
    pub note: Option<String>,
    pub references: Vec<AlertRef>,
    pub infos: Vec<CapInfo>,
}

impl CapAlert {
    /// What identifies the alert for updates and cancels: sender and identifier.
    pub fn key(&self) -> AlertKey {
        AlertKey {
            sender: self.sender.clone(),
            identifier: self.identifier.clone(),
        }
    }
}

/// An alert as `<references>` name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AlertKey {
    pub sender: String,
    pub identifier: String,
}

impl From<&AlertRef> for AlertKey {
    fn from(r: &AlertRef) -> Self {
        AlertKey {
            sender: r.sender.clone(),
            identifier: r.identifier.clone(),
        }
    }
}

/// Parse and check a CAP 1.2 or 1.1 alert. See the module documentation for what is refused.
pub fn parse_cap(bytes: &[u8], limits: &CapLimits) -> Result<CapAlert, CapError> {
    if bytes.len() > limits.max_document_bytes {
        return Err(CapError::TooLarge {
            size: bytes.len(),
            limit: limits.max_document_bytes,
        });
    }
    let text = decode_xml(bytes)?;
    let (root, version) = read_tree(&text, limits)?;
    build_alert(&root, version, limits)
}

// ---------------------------------------------------------------------------------------------
// A small tree of the CAP-namespace elements.

#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn first(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    /// The trimmed text of the first child `name`, `None` where absent or empty.
    fn text_of(&self, name: &str) -> Option<&str> {
        self.first(name)
            .map(|n| n.text.trim())
            .filter(|t| !t.is_empty())
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn xml_err(e: impl std::fmt::Display, position: u64) -> CapError {
    CapError::Xml(format!("{e} (near byte {position})"))
}

/// Read the document into a tree of the elements in the root's CAP namespace. Elements of
/// other namespaces (signatures, extensions) are skipped with everything inside them.
fn read_tree(text: &str, limits: &CapLimits) -> Result<(Node, CapVersion), CapError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;

    let mut ns: Option<Vec<u8>> = None;
    let mut version = CapVersion::V1_2;
    // The open elements: Some(node) for a CAP element, None inside a skipped element.
    let mut stack: Vec<Option<Node>> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;

    loop {
        let (element_ns, event) = match reader.read_resolved_event() {
            Ok((ResolveResult::Bound(n), event)) => (Ok(Some(n.as_ref().to_vec())), event),
            Ok((ResolveResult::Unbound, event)) => (Ok(None), event),
            Ok((ResolveResult::Unknown(p), event)) => (Err(p), event),
            Err(e) => return Err(xml_err(e, reader.buffer_position())),
        };
        match event {
            Event::DocType(_) => return Err(CapError::HasDtd),
            Event::Start(start) => {
                elements += 1;
                if elements > limits.max_elements {
                    return Err(CapError::Limit(format!(
                        "more than {} elements",
                        limits.max_elements
                    )));
                }
                if stack.len() >= limits.max_depth {
                    return Err(CapError::Limit(format!(
                        "elements nested deeper than {}",
                        limits.max_depth
                    )));
                }
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let element_ns: Option<Vec<u8>> = element_ns.map_err(|p| {
                    CapError::Xml(format!(
                        "undeclared namespace prefix {:?}",
                        clip(&String::from_utf8_lossy(&p))
                    ))
                })?;
                if root.is_some() {
                    return Err(CapError::Xml("content after the root element".into()));
                }
                if stack.is_empty() {
                    // The root.
                    let uri = element_ns.clone().unwrap_or_default();
                    let uri = String::from_utf8_lossy(&uri).into_owned();
                    if local != "alert" {
                        return Err(CapError::NotCap(format!(
                            "the root element is <{}>, not <alert>",
                            clip(&local)
                        )));
                    }
                    if uri != CAP_1_2_NAMESPACE && uri != CAP_1_1_NAMESPACE {
                        return Err(CapError::NotCap(if uri.is_empty() {
                            "<alert> has no CAP namespace (urn:oasis:names:tc:emergency:cap:1.2 or 1.1)".into()
                        } else {
                            format!("unsupported namespace {:?}", clip(&uri))
                        }));
                    }
                    version = if uri == CAP_1_1_NAMESPACE {
                        CapVersion::V1_1
                    } else {
                        CapVersion::V1_2
                    };
                    ns = element_ns;
                    stack.push(Some(Node {
                        name: local,
                        ..Node::default()
                    }));
                } else {
                    let parent_is_cap = matches!(stack.last(), Some(Some(_)));
                    if parent_is_cap && element_ns == ns {
                        stack.push(Some(Node {
                            name: local,
                            ..Node::default()
                        }));
                    } else {
                        stack.push(None);
                    }
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(CapError::Xml("unexpected end tag".into()));
                };
                if let Some(node) = done {
                    match stack.last_mut() {
                        Some(Some(parent)) => parent.children.push(node),
                        Some(None) => {}
                        None => root = Some(node),
                    }
                }
            }
            Event::Text(t) => {
                let raw = t
                    .unescape()
                    .map_err(|e| xml_err(e, reader.buffer_position()))?;
                match stack.last_mut() {
                    Some(Some(node)) => node.text.push_str(&raw),
                    Some(None) => {}
                    None => {
                        if !raw.trim().is_empty() {
                            return Err(CapError::Xml("text outside the root element".into()));
                        }
                    }
                }
            }
            Event::CData(c) => {
                let raw =
                    std::str::from_utf8(&c).map_err(|e| xml_err(e, reader.buffer_position()))?;
                match stack.last_mut() {
                    Some(Some(node)) => node.text.push_str(raw),
                    Some(None) => {}
                    None => return Err(CapError::Xml("CDATA outside the root element".into())),
                }
            }
            Event::Empty(_) => unreachable!("expand_empty_elements is set"),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(CapError::Xml("the document ends inside an element".into()));
    }
    let root = root.ok_or_else(|| CapError::NotCap("the document has no root element".into()))?;
    Ok((root, version))
}

// ---------------------------------------------------------------------------------------------
// From the tree to a checked alert.

fn required<'a>(node: &'a Node, element: &'static str, context: &str) -> Result<&'a str, CapError> {
    node.text_of(element).ok_or_else(|| CapError::Missing {
        element,
        context: context.to_string(),
    })
}

fn time_of(
    node: &Node,
    element: &'static str,
    context: &str,
) -> Result<Option<Timestamp>, CapError> {
    match node.text_of(element) {
        None => Ok(None),
        Some(s) => parse_time(s).map(Some).map_err(|e| CapError::Invalid {
            element,
            context: context.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn opt_text(node: &Node, element: &str) -> Option<String> {
    node.text_of(element).map(str::to_string)
}

fn named_values(node: &Node, element: &str) -> Vec<NamedValue> {
    node.all(element)
        .map(|n| NamedValue {
            name: n.text_of("valueName").unwrap_or_default().to_string(),
            value: n.text_of("value").unwrap_or_default().to_string(),
        })
        .collect()
}

fn build_alert(root: &Node, version: CapVersion, limits: &CapLimits) -> Result<CapAlert, CapError> {
    let ctx = "";
    let identifier = required(root, "identifier", ctx)?.to_string();
    let sender = required(root, "sender", ctx)?.to_string();
    let sent_text = required(root, "sent", ctx)?;
    let sent = parse_time(sent_text).map_err(|e| CapError::Invalid {
        element: "sent",
        context: String::new(),
        reason: e.to_string(),
    })?;
    let status = Status::parse(required(root, "status", ctx)?, String::new())?;
    let msg_type = MsgType::parse(required(root, "msgType", ctx)?, String::new())?;
    let scope = Scope::parse(required(root, "scope", ctx)?, String::new())?;

    let info_nodes: Vec<&Node> = root.all("info").collect();
    if info_nodes.len() > limits.max_info_blocks {
        return Err(CapError::Limit(format!(
            "{} <info> blocks, more than {}",
            info_nodes.len(),
            limits.max_info_blocks
        )));
    }
    let mut infos = Vec::with_capacity(info_nodes.len());
    for (i, node) in info_nodes.into_iter().enumerate() {
        infos.push(build_info(node, i + 1, limits)?);
    }

    let references = match root.text_of("references") {
        None => Vec::new(),
        Some(text) => parse_references(text)?,
    };
    if matches!(msg_type, MsgType::Update | MsgType::Cancel) && references.is_empty() {
        return Err(CapError::Missing {
            element: "references",
            context: format!(" (msgType {msg_type} must name the alerts it applies to)"),
        });
    }

    Ok(CapAlert {
        version,
        identifier,
        sender,
        sent,
        status,
        msg_type,
        scope,
        source: opt_text(root, "source"),
        note: opt_text(root, "note"),
        references,
        infos,
    })
}

fn parse_references(text: &str) -> Result<Vec<AlertRef>, CapError> {
    text.split_whitespace()
        .map(|item| {
            let mut parts = item.split(',');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(sender), Some(identifier), sent, None)
                    if !sender.is_empty() && !identifier.is_empty() =>
                {
                    Ok(AlertRef {
                        sender: sender.to_string(),
                        identifier: identifier.to_string(),
                        sent: sent.filter(|s| !s.is_empty()).map(str::to_string),
                    })
                }
                _ => Err(CapError::Invalid {
                    element: "references",
                    context: String::new(),
                    reason: format!("{:?} is not sender,identifier,sent", clip(item)),
                }),
            }
        })
        .collect()
}

fn build_info(node: &Node, n: usize, limits: &CapLimits) -> Result<CapInfo, CapError> {
    let ctx = format!(" in <info> #{n}");
    let categories: Vec<String> = node
        .all("category")
        .map(|c| c.text.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if categories.is_empty() {
        return Err(CapError::Missing {
            element: "category",
            context: ctx,
        });
    }
    let event = required(node, "event", &ctx)?.to_string();
    let urgency = required(node, "urgency", &ctx)?.to_string();
    let severity = CapSeverity::parse(required(node, "severity", &ctx)?, ctx.clone())?;
    let certainty = required(node, "certainty", &ctx)?.to_string();

    let area_nodes: Vec<&Node> = node.all("area").collect();
    if area_nodes.len() > limits.max_areas_per_info {
        return Err(CapError::Limit(format!(
            "{} <area> blocks{ctx}, more than {}",
            area_nodes.len(),
            limits.max_areas_per_info
        )));
    }
    let mut areas = Vec::with_capacity(area_nodes.len());
    for (j, a) in area_nodes.into_iter().enumerate() {
        areas.push(build_area(
            a,
            &format!(" in <area> #{} of <info> #{n}", j + 1),
            limits,
        )?);
    }

    Ok(CapInfo {
        language: opt_text(node, "language").unwrap_or_else(|| "en-US".to_string()),
        categories,
        event,
        urgency,
        severity,
        certainty,
        event_codes: named_values(node, "eventCode"),
        effective: time_of(node, "effective", &ctx)?,
        onset: time_of(node, "onset", &ctx)?,
        expires: time_of(node, "expires", &ctx)?,
        sender_name: opt_text(node, "senderName"),
        headline: opt_text(node, "headline"),
        description: opt_text(node, "description"),
        instruction: opt_text(node, "instruction"),
        parameters: named_values(node, "parameter"),
        areas,
    })
}

fn build_area(node: &Node, ctx: &str, limits: &CapLimits) -> Result<CapArea, CapError> {
    let geo_err = |element: &'static str, e: GeoError| CapError::Invalid {
        element,
        context: ctx.to_string(),
        reason: e.to_string(),
    };
    let mut polygons = Vec::new();
    for p in node.all("polygon").filter(|p| !p.text.trim().is_empty()) {
        polygons.push(
            Polygon::parse_cap(&p.text, limits.max_polygon_vertices)
                .map_err(|e| geo_err("polygon", e))?,
        );
    }
    let mut circles = Vec::new();
    for c in node.all("circle").filter(|c| !c.text.trim().is_empty()) {
        circles.push(Circle::parse_cap(&c.text).map_err(|e| geo_err("circle", e))?);
    }
    let geocodes = named_values(node, "geocode");
    let mut regions: Vec<RegionCode> = Vec::new();
    for g in &geocodes {
        if !REGION_GEOCODE_NAMES.contains(&g.name.as_str()) {
            continue;
        }
        let v = g.value.as_str();
        let six = if matches!(v.len(), 6 | 9 | 12) && v.bytes().all(|b| b.is_ascii_digit()) {
            &v[..6]
        } else {
            v
        };
        let code = RegionCode::new(six).map_err(|_| CapError::Invalid {
            element: "geocode",
            context: ctx.to_string(),
            reason: format!(
                "{} {:?} is not a GB/T 2260 region code (6 digits)",
                g.name,
                clip(v)
            ),
        })?;
        if !regions.contains(&code) {
            regions.push(code);
        }
    }
    Ok(CapArea {
        description: node.text_of("areaDesc").unwrap_or_default().to_string(),
        polygons,
        circles,
        geocodes,
        regions,
    })
}
