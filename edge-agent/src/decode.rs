//! Register encodings: pure functions between Modbus registers (or bits) and values.
//!
//! A Modbus register is a 16-bit word sent high byte first. A value wider than one register
//! spans several; `order` names the byte order of a 32-bit value as the letters `ABCD`
//! (A = most significant byte) appear on the wire:
//!
//! | order  | words            | bytes within a word | 32-bit example (0x11223344) |
//! | ------ | ---------------- | ------------------- | ----------------------------|
//! | `ABCD` | most significant first | high byte first | `0x1122 0x3344` |
//! | `CDAB` | least significant first | high byte first | `0x3344 0x1122` |
//! | `BADC` | most significant first | low byte first  | `0x2211 0x4433` |
//! | `DCBA` | least significant first | low byte first  | `0x4433 0x2211` |
//!
//! The same two rules (word order, byte order within a word) apply to 64-bit values and, for
//! the byte rule only, to 16-bit values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The value type of a point as it is stored in the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Bool,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl DataType {
    pub const ALL: [DataType; 9] = [
        DataType::Bool,
        DataType::U16,
        DataType::I16,
        DataType::U32,
        DataType::I32,
        DataType::U64,
        DataType::I64,
        DataType::F32,
        DataType::F64,
    ];

    /// How many 16-bit registers a value of this type occupies (a bool uses one bit of one).
    pub fn registers(self) -> u16 {
        match self {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
        }
    }
}

/// Word and byte order of a multi-byte value (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ByteOrder {
    #[default]
    #[serde(rename = "ABCD")]
    Abcd,
    #[serde(rename = "CDAB")]
    Cdab,
    #[serde(rename = "BADC")]
    Badc,
    #[serde(rename = "DCBA")]
    Dcba,
}

impl ByteOrder {
    pub const ALL: [ByteOrder; 4] = [
        ByteOrder::Abcd,
        ByteOrder::Cdab,
        ByteOrder::Badc,
        ByteOrder::Dcba,
    ];

    fn words_reversed(self) -> bool {
        matches!(self, ByteOrder::Cdab | ByteOrder::Dcba)
    }
    fn bytes_swapped(self) -> bool {
        matches!(self, ByteOrder::Badc | ByteOrder::Dcba)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ByteOrder::Abcd => "ABCD",
            ByteOrder::Cdab => "CDAB",
            ByteOrder::Badc => "BADC",
            ByteOrder::Dcba => "DCBA",
        }
    }
}

/// `Display` for the types above: their `as_str` name.
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(DataType, ByteOrder);

/// A decoded raw value, before scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue {
    Bool(bool),
    Int(i128),
    Float(f64),
}

impl RawValue {
    /// The value as a number (bools as 0/1).
    pub fn as_f64(self) -> f64 {
        match self {
            RawValue::Bool(b) => f64::from(u8::from(b)),
            RawValue::Int(i) => i as f64,
            RawValue::Float(f) => f,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{ty} needs {need} registers, got {got}")]
    TooFewRegisters { ty: DataType, need: u16, got: usize },
    #[error("bool from a register needs a bit 0..15")]
    MissingBit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("value {value} is outside the range of {ty}")]
    OutOfRange { ty: DataType, value: String },
    #[error("value is not finite")]
    NotFinite,
}

/// The big-endian bytes of a value, most significant first, out of registers in `order`.
fn bytes_from_registers(regs: &[u16], order: ByteOrder) -> Vec<u8> {
    let mut words: Vec<u16> = regs.to_vec();
    if order.words_reversed() {
        words.reverse();
    }
    let mut out = Vec::with_capacity(words.len() * 2);
    for w in words {
        let [hi, lo] = w.to_be_bytes();
        if order.bytes_swapped() {
            out.extend_from_slice(&[lo, hi]);
        } else {
            out.extend_from_slice(&[hi, lo]);
        }
    }
    out
}

/// Registers in `order` out of the big-endian bytes of a value.
fn registers_from_bytes(bytes: &[u8], order: ByteOrder) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            if order.bytes_swapped() {
                u16::from_be_bytes([c[1], c[0]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    if order.words_reversed() {
        words.reverse();
    }
    words
}

/// Decode a value of `ty` from the first registers of `regs`. A `bool` needs `bit`.
pub fn decode_registers(
    regs: &[u16],
    ty: DataType,
    order: ByteOrder,
    bit: Option<u8>,
) -> Result<RawValue, DecodeError> {
    let need = ty.registers();
    if regs.len() < usize::from(need) {
        return Err(DecodeError::TooFewRegisters {
            ty,
            need,
            got: regs.len(),
        });
    }
    let regs = &regs[..usize::from(need)];
    if ty == DataType::Bool {
        let bit = bit.filter(|b| *b < 16).ok_or(DecodeError::MissingBit)?;
        // The bit is numbered in the register's value (0 = least significant), after the
        // byte rule of the order.
        let b = bytes_from_registers(regs, order);
        let word = u16::from_be_bytes([b[0], b[1]]);
        return Ok(RawValue::Bool(word & (1 << bit) != 0));
    }
    let b = bytes_from_registers(regs, order);
    Ok(match ty {
        DataType::Bool => unreachable!(),
        DataType::U16 => RawValue::Int(i128::from(u16::from_be_bytes([b[0], b[1]]))),
        DataType::I16 => RawValue::Int(i128::from(i16::from_be_bytes([b[0], b[1]]))),
        DataType::U32 => RawValue::Int(i128::from(u32::from_be_bytes(
            b[..4].try_into().expect("4 bytes"),
        ))),
        DataType::I32 => RawValue::Int(i128::from(i32::from_be_bytes(
            b[..4].try_into().expect("4 bytes"),
        ))),
        DataType::U64 => RawValue::Int(i128::from(u64::from_be_bytes(
            b[..8].try_into().expect("8 bytes"),
        ))),
        DataType::I64 => RawValue::Int(i128::from(i64::from_be_bytes(
            b[..8].try_into().expect("8 bytes"),
        ))),
        DataType::F32 => RawValue::Float(f64::from(f32::from_be_bytes(
            b[..4].try_into().expect("4 bytes"),
        ))),
        DataType::F64 => RawValue::Float(f64::from_be_bytes(b[..8].try_into().expect("8 bytes"))),
    })
}

/// Encode a raw (unscaled) number as registers of `ty` in `order`. Integers are rounded to
/// the nearest; a value outside the type's range is refused. For `bool` in a register, the
/// result is the register with only `bit` set (or zero).
pub fn encode_registers(
    value: f64,
    ty: DataType,
    order: ByteOrder,
    bit: Option<u8>,
) -> Result<Vec<u16>, EncodeError> {
    if !value.is_finite() {
        return Err(EncodeError::NotFinite);
    }
    let out_of_range = || EncodeError::OutOfRange {
        ty,
        value: value.to_string(),
    };
    let int = |lo: f64, hi: f64| -> Result<i128, EncodeError> {
        let r = value.round();
        if r < lo || r > hi {
            Err(out_of_range())
        } else {
            Ok(r as i128)
        }
    };
    // An integer in range as `n` big-endian bytes (two's complement): the last `n` of its i128.
    let be = |v: i128, n: usize| v.to_be_bytes()[16 - n..].to_vec();
    let bytes: Vec<u8> = match ty {
        DataType::Bool => {
            let word: u16 = if value != 0.0 {
                1 << bit.unwrap_or(0).min(15)
            } else {
                0
            };
            word.to_be_bytes().to_vec()
        }
        DataType::U16 => be(int(0.0, f64::from(u16::MAX))?, 2),
        DataType::I16 => be(int(f64::from(i16::MIN), f64::from(i16::MAX))?, 2),
        DataType::U32 => be(int(0.0, f64::from(u32::MAX))?, 4),
        DataType::I32 => be(int(f64::from(i32::MIN), f64::from(i32::MAX))?, 4),
        DataType::U64 => be(int(0.0, u64::MAX as f64)?.min(i128::from(u64::MAX)), 8),
        DataType::I64 => be(
            int(i64::MIN as f64, i64::MAX as f64)?
                .clamp(i128::from(i64::MIN), i128::from(i64::MAX)),
            8,
        ),
        DataType::F32 => {
            if value.abs() > f64::from(f32::MAX) {
                return Err(out_of_range());
            }
            (value as f32).to_be_bytes().to_vec()
        }
        DataType::F64 => value.to_be_bytes().to_vec(),
    };
    Ok(registers_from_bytes(&bytes, order))
}

/// Apply `scale` and `offset` to a raw value: `raw * scale + offset`.
///
/// A decimal scale (`0.1`, `0.01`, ...) divides by the power of ten instead, so that a register
/// of 35 with scale 0.01 reads 0.35, not 0.35000000000000003.
pub fn scaled(raw: RawValue, scale: f64, offset: f64) -> f64 {
    let raw = raw.as_f64();
    let inverse = 1.0 / scale;
    let v = if scale != 0.0 && scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
        raw / inverse.round()
    } else {
        raw * scale
    };
    if offset == 0.0 {
        v
    } else {
        v + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_for_every_order() {
        let bytes = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        for order in ByteOrder::ALL {
            for n in [2, 4, 8] {
                let regs = registers_from_bytes(&bytes[..n], order);
                assert_eq!(
                    bytes_from_registers(&regs, order),
                    bytes[..n].to_vec(),
                    "{order} {n}"
                );
            }
        }
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn decimal_scales_give_the_decimal_value() {
        assert_eq!(scaled(RawValue::Int(35), 0.01, 0.0), 0.35);
        assert_eq!(scaled(RawValue::Int(162), 0.01, 0.0), 1.62);
        assert_eq!(scaled(RawValue::Int(-7), 0.1, 0.0), -0.7);
        assert_eq!(scaled(RawValue::Int(3), 2.5, 1.0), 8.5);
    }
}
