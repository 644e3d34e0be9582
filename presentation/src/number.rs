//! Numbers as people write them.

/// A number with at least one decimal and at most six: `1.0`, `1.62`, `0.3` (not
/// `0.30000000000000004`).
pub fn num(v: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(1.0), "1.0");
        assert_eq!(num(1.62), "1.62");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(24.0), "24.0");
        assert_eq!(num(f64::NAN), "NaN");
    }
}
