//! An incident's message text from the engine's typed [`Message`], in the reader's language:
//! "工作面甲烷 1.62 %，达到断电浓度 1.5 %" or "CH4 1.62 % >= power-off level 1.5 % at working
//! face".

mod en;
mod zh;

use crate::number::num;
use crate::Language;
use alarm_rules::{Message, PointTerms};
use telemetry::{LimitKey, Value};

/// The text of a transition's message.
pub fn message_text(m: &Message, lang: Language) -> String {
    match lang {
        Language::ZhCn => zh::text(m),
        Language::En => en::text(m),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Number(n) => num(*n),
        Value::Bool(b) => b.to_string(),
        Value::Position(p) => format!("({}, {})", p.lat, p.lon),
        Value::Null => "null".to_string(),
    }
}

/// A value and its unit (" km/h", or "" for none) as a message shows them: a position is
/// shown by its speed where it has one (what vehicle rules judge), else by its coordinates.
fn measured(p: &PointTerms, v: &Value) -> (String, String) {
    if let Value::Position(pos) = v {
        return match pos.speed_kmh {
            Some(s) => (num(s), " km/h".to_string()),
            None => (value_text(v), String::new()),
        };
    }
    let unit = match &p.unit {
        Some(u) if u.as_str() != "bool" && !u.as_str().is_empty() => format!(" {}", u.as_str()),
        _ => String::new(),
    };
    (value_text(v), unit)
}

fn seconds(ms: u64) -> String {
    num(ms as f64 / 1000.0)
}

/// A point's alarm setting as control rooms write it: `HH`, `H`, `L`, `LL`.
fn limit_name(k: LimitKey) -> &'static str {
    match k {
        LimitKey::Hh => "HH",
        LimitKey::H => "H",
        LimitKey::L => "L",
        LimitKey::Ll => "LL",
    }
}

/// Items named by `name`, joined by `sep`.
fn joined<T>(items: &[T], name: impl Fn(&T) -> String, sep: &str) -> String {
    items.iter().map(name).collect::<Vec<_>>().join(sep)
}
