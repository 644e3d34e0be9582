//! Registers read per second: one poller (the agent's own `DevicePoller`) reads our simulator
//! over Modbus TCP on the loopback. The device has 1,000 consecutive holding registers, one
//! `u16` point each; the planner puts them into 8 requests (7 x 125 + 1 x 125). One iteration
//! is one full poll (`poll_once`: every planned request, decode, one reading per point).
//! Throughput is reported in registers per second (criterion's "elem/s").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge_agent::metrics::AgentMetrics;
use edge_agent::poll::DevicePoller;
use edge_agent::{AgentConfig, Simulator, SimulatorConfig, SystemClock};
use std::fmt::Write;
use std::hint::black_box;
use std::sync::Arc;

const REGISTERS: u16 = 1_000;

fn simulator_toml() -> String {
    let mut s = String::from("[[devices]]\nname = \"plc\"\ntick_ms = 1000\n");
    for a in 0..REGISTERS {
        writeln!(
            s,
            "[[devices.values]]\nfunction = \"holding\"\naddress = {a}\ntype = \"u16\"\nsignal = {{ kind = \"random_walk\", min = 0, max = 60000, step = 50, seed = {a} }}"
        )
        .unwrap();
    }
    s
}

fn agent_toml(port: u16) -> String {
    let mut s = format!(
        "agent = \"bench\"\nsite = \"bench\"\n[[devices]]\nname = \"plc\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout_ms = 2000\n"
    );
    for a in 0..REGISTERS {
        writeln!(
            s,
            "[[devices.points]]\npoint = \"R{a}\"\nfunction = \"holding\"\naddress = {a}\ntype = \"u16\"\nquantity = \"ch4\"\nunit = \"%\""
        )
        .unwrap();
    }
    s
}

fn poll(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(Simulator::start(
            SimulatorConfig::from_toml_str(&simulator_toml()).unwrap(),
        ))
        .unwrap();
    let port = sim.addr("plc").unwrap().port();
    let config = AgentConfig::from_toml_str(&agent_toml(port)).unwrap();
    config.validate().unwrap();
    let device = config.devices[0].clone();
    let mut poller = DevicePoller::new(device, AgentMetrics::new(), Arc::new(SystemClock));
    let requests = poller.plan().len();
    // Connect and check once: every point read good.
    let first = rt.block_on(poller.poll_once());
    assert_eq!(first.len(), REGISTERS as usize);
    assert!(
        first.iter().all(|r| r.value.as_f64().is_some()),
        "every register read: {:?}",
        first.iter().find(|r| r.value.as_f64().is_none())
    );
    eprintln!("poll: {REGISTERS} holding registers in {requests} requests");

    let mut g = c.benchmark_group("poll");
    g.throughput(Throughput::Elements(u64::from(REGISTERS)));
    g.bench_function("holding_u16_1000_registers_tcp", |b| {
        b.iter(|| black_box(rt.block_on(poller.poll_once())))
    });
    g.finish();
    rt.block_on(sim.shutdown());
}

criterion_group!(benches, poll);
criterion_main!(benches);
