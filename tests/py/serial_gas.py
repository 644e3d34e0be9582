"""A Modbus RTU line of two gas monitors (units 1 and 2) on a serial port, for the onboarding
system test (tests/tests/onboarding.rs).

usage: serial_gas.py PORT BAUD PARITY(N|E|O) STOPBITS CH4_RAW CO_RAW
(A pseudo-terminal refuses parity: tests use N.)
Unit 1: holding register 0 = CH4_RAW (methane, 0.01 % a step). Unit 2: holding register 0 =
CO_RAW (carbon monoxide, ppm). Prints "ready" once the port is open.
"""
import asyncio
import sys

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice


async def main():
    port, baud, parity, stop, ch4, co = sys.argv[1:7]
    devices = [
        SimDevice(id=1, simdata=[SimData(address=0, values=[int(ch4)], datatype=DataType.REGISTERS)]),
        SimDevice(id=2, simdata=[SimData(address=0, values=[int(co)], datatype=DataType.REGISTERS)]),
    ]
    server = ModbusSerialServer(
        devices,
        framer=FramerType.RTU,
        port=port,
        baudrate=int(baud),
        parity=parity,
        stopbits=int(stop),
        bytesize=8,
    )
    # Returns once the port is open (raises if it cannot be).
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await server.serving


if __name__ == "__main__":
    asyncio.run(main())
