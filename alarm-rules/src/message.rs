//! Human text of transitions, e.g. "CH4 1.62 % >= power-off level 1.5 % at working face".

use telemetry::{PointId, PointSpec, Quantity, Value};

/// How a point's quantity is named in a message: gases in capitals (`CH4`, `H2S`), others as words.
pub(crate) fn quantity_label(spec: Option<&PointSpec>, point: &PointId) -> String {
    let Some(spec) = spec else {
        return point.to_string();
    };
    match &spec.quantity {
        Quantity::Toxic | Quantity::Lel => {
            let gas = spec.gas.as_deref().map(|g| g.to_ascii_uppercase());
            match (&spec.quantity, gas) {
                (Quantity::Lel, Some(g)) => format!("{g} LEL"),
                (Quantity::Lel, None) => "LEL".to_string(),
                (_, Some(g)) => g,
                _ => "toxic gas".to_string(),
            }
        }
        Quantity::Ch4 | Quantity::Co | Quantity::O2 | Quantity::Co2 | Quantity::H2s => {
            spec.quantity.as_str().to_ascii_uppercase()
        }
        q => q.as_str().replace('_', " "),
    }
}

pub(crate) fn unit(spec: Option<&PointSpec>) -> String {
    match spec {
        Some(s) if s.unit.as_str() != "bool" && !s.unit.as_str().is_empty() => {
            format!(" {}", s.unit.as_str())
        }
        _ => String::new(),
    }
}

/// Where: "at working face", or "at point CH4-101" where no location is known.
pub(crate) fn place(spec: Option<&PointSpec>, point: &PointId) -> String {
    match spec.and_then(|s| s.location.as_deref()) {
        Some(l) => format!("at {}", l.replace('_', " ")),
        None => format!("at point {point}"),
    }
}

/// A number as people write it: at least one decimal, at most six.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let r = (v * 1e6).round() / 1e6;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::Number(n) => num(*n),
        Value::Bool(b) => b.to_string(),
        Value::Position(p) => format!("({}, {})", p.lat, p.lon),
        Value::Null => "null".to_string(),
    }
}

pub(crate) fn value_json(v: &Value) -> Option<serde_json::Value> {
    Some(match v {
        Value::Number(n) => serde_json::Number::from_f64(*n).map(serde_json::Value::Number)?,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Position(p) => serde_json::to_value(p).ok()?,
        Value::Null => serde_json::Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(1.0), "1.0");
        assert_eq!(num(1.62), "1.62");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(24.0), "24.0");
    }
}
