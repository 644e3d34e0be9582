//! Modbus addresses as integrators write them, parsed into a table, a zero-based offset and
//! (where written) a unit id and a bit. Pure functions; see the table in `README.md`.
//!
//! | written    | table            | offset | unit | bit |
//! | ---------- | ---------------- | ------ | ---- | --- |
//! | `12`       | from `function`  | 12     | -    | -   |
//! | `40001`    | holding          | 0      | -    | -   |
//! | `30010`    | input            | 9      | -    | -   |
//! | `00001`    | coil             | 0      | -    | -   |
//! | `10001`    | discrete input   | 0      | -    | -   |
//! | `400001`   | holding          | 0      | -    | -   |
//! | `465536`   | holding          | 65535  | -    | -   |
//! | `3!400010` | holding          | 9      | 3    | -   |
//! | `40001.3`  | holding          | 0      | -    | 3   |
//!
//! A number of one to four digits is a zero-based offset (as a TOML integer always is); five
//! digits are the Modicon form (table digit, then the 1-based number 1..9999), six digits its
//! extended form (1..65536). `unit!` in front (Neuron's `SLAVE!ADDRESS`) names the unit id;
//! `.bit` behind names a bit (0..15) of a register.

use crate::config::Function;
use std::fmt;

/// An address as written, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The table the address names (`None` for a plain offset: the point's `function` says).
    pub function: Option<Function>,
    /// Zero-based protocol address.
    pub offset: u16,
    /// The unit id written before `!`.
    pub unit: Option<u8>,
    /// The bit written after `.`.
    pub bit: Option<u8>,
}

/// Why an address was refused; the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {written:?}: {why}")]
pub struct AddressError {
    pub written: String,
    pub why: String,
}

impl Address {
    /// A zero-based offset (a TOML integer).
    pub fn offset(offset: u16) -> Address {
        Address {
            function: None,
            offset,
            unit: None,
            bit: None,
        }
    }
}

impl fmt::Display for Address {
    /// The six-digit form where the table is known (`3!400010.2`), else the offset.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = self.unit {
            write!(f, "{u}!")?;
        }
        match self.function {
            Some(func) => write!(f, "{}{:05}", table_digit(func), u32::from(self.offset) + 1)?,
            None => write!(f, "{}", self.offset)?,
        }
        if let Some(b) = self.bit {
            write!(f, ".{b}")?;
        }
        Ok(())
    }
}

fn table_digit(f: Function) -> char {
    match f {
        Function::Coil => '0',
        Function::DiscreteInput => '1',
        Function::Input => '3',
        Function::Holding => '4',
    }
}

fn table_of(digit: char) -> Option<Function> {
    Some(match digit {
        '0' => Function::Coil,
        '1' => Function::DiscreteInput,
        '3' => Function::Input,
        '4' => Function::Holding,
        _ => return None,
    })
}

/// Parse an address as written (see the module documentation).
pub fn parse_address(written: &str) -> Result<Address, AddressError> {
    let err = |why: String| AddressError {
        written: written.to_string(),
        why,
    };
    let s = written.trim();
    let (unit, rest) = match s.split_once('!') {
        Some((u, rest)) => {
            let u = u.trim();
            let unit = u
                .parse::<u8>()
                .ok()
                .filter(|_| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| err(format!("unit id {u:?} before ! must be 0..255")))?;
            (Some(unit), rest.trim())
        }
        None => (None, s),
    };
    if rest.contains('#') {
        return Err(err(
            "a byte order after # is not read here; set the point's order (ABCD, CDAB, BADC, DCBA)"
                .into(),
        ));
    }
    let (number, bit) = match rest.split_once('.') {
        Some((n, b)) => {
            let bit = b
                .parse::<u8>()
                .ok()
                .filter(|v| *v < 16 && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| err(format!("bit {b:?} after . must be 0..15")))?;
            (n, Some(bit))
        }
        None => (rest, None),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "must be digits: a zero-based offset (0..9999) or a 1-based address with its table digit (40001, 400001)"
                .into(),
        ));
    }
    let (function, offset) = match number.len() {
        1..=4 => (None, number.parse::<u16>().expect("four digits")),
        5 | 6 => {
            let digit = number.chars().next().expect("non-empty");
            let func = table_of(digit).ok_or_else(|| {
                err(format!(
                    "a {}-digit address starts with its table: 0 coil, 1 discrete input, 3 input register, 4 holding register (not {digit})",
                    number.len()
                ))
            })?;
            let n: u32 = number[1..].parse().expect("digits");
            let max = if number.len() == 5 { 9_999 } else { 65_536 };
            if n == 0 || n > max {
                return Err(err(format!(
                    "the number after the table digit is 1-based: 1..{max}"
                )));
            }
            (Some(func), (n - 1) as u16)
        }
        _ => {
            return Err(err(
                "too many digits: a six-digit address (465536) is the longest form".into(),
            ))
        }
    };
    if bit.is_some() && function.is_some_and(Function::is_bits) {
        return Err(err("a coil or discrete input has no bits".into()));
    }
    Ok(Address {
        function,
        offset,
        unit,
        bit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Function::*;

    fn ok(s: &str) -> (Option<Function>, u16, Option<u8>, Option<u8>) {
        let a = parse_address(s).unwrap_or_else(|e| panic!("{e}"));
        (a.function, a.offset, a.unit, a.bit)
    }

    #[test]
    fn the_forms_integrators_write() {
        assert_eq!(ok("0"), (None, 0, None, None));
        assert_eq!(ok("12"), (None, 12, None, None));
        assert_eq!(ok("9999"), (None, 9999, None, None));
        assert_eq!(ok("40001"), (Some(Holding), 0, None, None));
        assert_eq!(ok("49999"), (Some(Holding), 9998, None, None));
        assert_eq!(ok("30010"), (Some(Input), 9, None, None));
        assert_eq!(ok("00001"), (Some(Coil), 0, None, None));
        assert_eq!(ok("10005"), (Some(DiscreteInput), 4, None, None));
        assert_eq!(ok("400001"), (Some(Holding), 0, None, None));
        assert_eq!(ok("465536"), (Some(Holding), 65535, None, None));
        assert_eq!(ok("310001"), (Some(Input), 10000, None, None));
        assert_eq!(ok("000001"), (Some(Coil), 0, None, None));
        assert_eq!(ok("165536"), (Some(DiscreteInput), 65535, None, None));
        assert_eq!(ok("1!400001"), (Some(Holding), 0, Some(1), None));
        assert_eq!(ok("247!300002"), (Some(Input), 1, Some(247), None));
        assert_eq!(ok("2!40010"), (Some(Holding), 9, Some(2), None));
        assert_eq!(ok("40001.15"), (Some(Holding), 0, None, Some(15)));
        assert_eq!(ok("3!400002.0"), (Some(Holding), 1, Some(3), Some(0)));
        assert_eq!(ok(" 40001 "), (Some(Holding), 0, None, None));
        assert_eq!(ok("7!12"), (None, 12, Some(7), None));
    }

    #[test]
    fn mistakes_say_how_to_write_it() {
        for (s, says) in [
            ("40000", "1-based: 1..9999"),
            ("400000", "1-based: 1..65536"),
            ("465537", "1-based: 1..65536"),
            ("20001", "starts with its table"),
            ("50001", "starts with its table"),
            ("4000001", "too many digits"),
            ("", "must be digits"),
            ("HR1", "must be digits"),
            ("-1", "must be digits"),
            ("256!40001", "unit id"),
            ("x!40001", "unit id"),
            ("!40001", "unit id"),
            ("40001.16", "bit"),
            ("40001.", "bit"),
            ("00001.1", "no bits"),
            ("1!400001#BB", "order"),
        ] {
            let e = parse_address(s).expect_err(s).to_string();
            assert!(e.contains(says), "{s}: {e}");
            assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["400001", "3!300010.4", "000005", "12", "9!100002"] {
            let a = parse_address(s).unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(parse_address(&a.to_string()).unwrap(), a);
        }
        assert_eq!(parse_address("40001").unwrap().to_string(), "400001");
    }
}
