//! Byte-exact register decoding and encoding for every type and every order.

use edge_agent::decode::{decode_registers, encode_registers, ByteOrder, DataType, RawValue};
use ByteOrder::*;
use DataType::*;

/// (type, value, [ABCD, CDAB, BADC, DCBA] registers)
fn vectors() -> Vec<(DataType, RawValue, [Vec<u16>; 4])> {
    vec![
        (
            U16,
            RawValue::Int(0x1234),
            [vec![0x1234], vec![0x1234], vec![0x3412], vec![0x3412]],
        ),
        (
            I16,
            RawValue::Int(-2),
            [vec![0xFFFE], vec![0xFFFE], vec![0xFEFF], vec![0xFEFF]],
        ),
        (
            U32,
            RawValue::Int(0x1122_3344),
            [
                vec![0x1122, 0x3344],
                vec![0x3344, 0x1122],
                vec![0x2211, 0x4433],
                vec![0x4433, 0x2211],
            ],
        ),
        (
            I32,
            RawValue::Int(-123_456_789), // 0xF8A432EB
            [
                vec![0xF8A4, 0x32EB],
                vec![0x32EB, 0xF8A4],
                vec![0xA4F8, 0xEB32],
                vec![0xEB32, 0xA4F8],
            ],
        ),
        (
            U64,
            RawValue::Int(0x1122_3344_5566_7788),
            [
                vec![0x1122, 0x3344, 0x5566, 0x7788],
                vec![0x7788, 0x5566, 0x3344, 0x1122],
                vec![0x2211, 0x4433, 0x6655, 0x8877],
                vec![0x8877, 0x6655, 0x4433, 0x2211],
            ],
        ),
        (
            U64,
            RawValue::Int(0x0011_2233_4455_6677), // below 2^53: exact through f64 as well
            [
                vec![0x0011, 0x2233, 0x4455, 0x6677],
                vec![0x6677, 0x4455, 0x2233, 0x0011],
                vec![0x1100, 0x3322, 0x5544, 0x7766],
                vec![0x7766, 0x5544, 0x3322, 0x1100],
            ],
        ),
        (
            I64,
            RawValue::Int(-2),
            [
                vec![0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE],
                vec![0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF],
                vec![0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF],
                vec![0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF],
            ],
        ),
        (
            F32,
            RawValue::Float(-2.5), // 0xC0200000
            [
                vec![0xC020, 0x0000],
                vec![0x0000, 0xC020],
                vec![0x20C0, 0x0000],
                vec![0x0000, 0x20C0],
            ],
        ),
        (
            F64,
            RawValue::Float(123.456), // 0x405EDD2F1A9FBE77
            [
                vec![0x405E, 0xDD2F, 0x1A9F, 0xBE77],
                vec![0xBE77, 0x1A9F, 0xDD2F, 0x405E],
                vec![0x5E40, 0x2FDD, 0x9F1A, 0x77BE],
                vec![0x77BE, 0x9F1A, 0x2FDD, 0x5E40],
            ],
        ),
    ]
}

#[test]
fn every_type_and_order_decodes_byte_exact() {
    for (ty, value, regs) in vectors() {
        for (order, r) in ByteOrder::ALL.into_iter().zip(regs.iter()) {
            assert_eq!(
                decode_registers(r, ty, order, None).unwrap(),
                value,
                "{ty} {order} {r:04X?}"
            );
        }
    }
}

#[test]
fn every_type_and_order_encodes_byte_exact() {
    for (ty, value, regs) in vectors() {
        // The simulator encodes from f64: integers beyond 2^53 are not exact there.
        if let RawValue::Int(i) = value {
            if i.unsigned_abs() > 1 << 53 {
                continue;
            }
        }
        for (order, r) in ByteOrder::ALL.into_iter().zip(regs.iter()) {
            assert_eq!(
                &encode_registers(value.as_f64(), ty, order, None).unwrap(),
                r,
                "{ty} {order}"
            );
        }
    }
}

#[test]
fn bools_from_register_bits() {
    // Bit 3 set: 0x0008 in the register's value; with a byte-swapping order it is stored 0x0800.
    assert_eq!(
        decode_registers(&[0x0008], Bool, Abcd, Some(3)).unwrap(),
        RawValue::Bool(true)
    );
    assert_eq!(
        decode_registers(&[0x0008], Bool, Abcd, Some(4)).unwrap(),
        RawValue::Bool(false)
    );
    assert_eq!(
        decode_registers(&[0x8000], Bool, Abcd, Some(15)).unwrap(),
        RawValue::Bool(true)
    );
    assert_eq!(
        decode_registers(&[0x0800], Bool, Badc, Some(3)).unwrap(),
        RawValue::Bool(true)
    );
    assert_eq!(
        decode_registers(&[0x0800], Bool, Dcba, Some(3)).unwrap(),
        RawValue::Bool(true)
    );
    assert_eq!(
        decode_registers(&[0x0800], Bool, Cdab, Some(3)).unwrap(),
        RawValue::Bool(false)
    );
    assert_eq!(
        encode_registers(1.0, Bool, Abcd, Some(3)).unwrap(),
        vec![0x0008]
    );
    assert_eq!(
        encode_registers(1.0, Bool, Badc, Some(3)).unwrap(),
        vec![0x0800]
    );
    assert!(decode_registers(&[0x0008], Bool, Abcd, None).is_err());
}

#[test]
fn extremes_and_refusals() {
    assert_eq!(
        decode_registers(&[0xFFFF; 4], U64, Abcd, None).unwrap(),
        RawValue::Int(u64::MAX as i128)
    );
    assert_eq!(
        decode_registers(&[0x8000, 0, 0, 0], I64, Abcd, None).unwrap(),
        RawValue::Int(i64::MIN as i128)
    );
    assert_eq!(
        decode_registers(&[0x8000, 0], I32, Abcd, None).unwrap(),
        RawValue::Int(i32::MIN as i128)
    );
    assert_eq!(
        decode_registers(&[0x8000], I16, Abcd, None).unwrap(),
        RawValue::Int(-32768)
    );
    assert!(
        decode_registers(&[0x1234], U32, Abcd, None).is_err(),
        "too few registers"
    );
    assert!(encode_registers(65536.0, U16, Abcd, None).is_err());
    assert!(encode_registers(-1.0, U32, Abcd, None).is_err());
    assert!(encode_registers(f64::NAN, F32, Abcd, None).is_err());
    // Extra registers beyond the type's width are ignored.
    assert_eq!(
        decode_registers(&[0x1234, 0xFFFF], U16, Abcd, None).unwrap(),
        RawValue::Int(0x1234)
    );
}
