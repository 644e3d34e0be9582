"""A pymodbus device with every type in every order, for edge-agent's tests.

usage: register_map.py PORT
Holding registers from 0: for each order in ABCD, CDAB, BADC, DCBA, the types
u16 i16 u32 i32 u64 i64 f32 f64 in turn (20 registers per order), then at 80 a register
with bits 0 and 5 set. Values are packed with Python's struct, independently of the agent.
"""
import asyncio
import struct
import sys

from pymodbus.server import StartAsyncTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

VALUES = [
    ("H", 4660), ("h", -2), ("I", 287454020), ("i", -123456789),
    ("Q", 4822678189205111), ("q", -9007199254740991), ("f", -2.5), ("d", 123.456),
]


def registers(fmt, value, order):
    raw = struct.pack(">" + fmt, value)
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def main():
    port = int(sys.argv[1])
    regs = []
    for order in ("ABCD", "CDAB", "BADC", "DCBA"):
        for fmt, value in VALUES:
            regs += registers(fmt, value, order)
    regs.append((1 << 0) | (1 << 5))
    dev = SimDevice(id=0, simdata=[SimData(address=0, values=regs, datatype=DataType.REGISTERS)])
    asyncio.run(StartAsyncTcpServer(context=dev, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()
