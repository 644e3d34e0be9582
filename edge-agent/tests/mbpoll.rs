//! mbpoll, a foreign Modbus client, against our simulator: reads registers and coils in the
//! encoding of their type and order, and writes a register that then holds.

use edge_agent::{Simulator, SimulatorConfig};
use std::process::Command;

mod common;

const SIM: &str = r#"
[[devices]]
name = "d"
tick_ms = 50
hold_ms = 60000
values = [
  { function = "holding", address = 0, type = "u16", scale = 0.01, signal = { kind = "static", value = 0.42 } },
  { function = "holding", address = 1, type = "u32", order = "CDAB", signal = { kind = "static", value = 287454020 } },
  { function = "holding", address = 3, type = "f32", order = "ABCD", signal = { kind = "static", value = -2.5 } },
  { function = "coil", address = 0, signal = { kind = "static", value = 1 } },
  { function = "coil", address = 1, signal = { kind = "static", value = 0 } },
]
"#;

fn mbpoll(args: &[&str]) -> String {
    let out = Command::new("mbpoll")
        .args(args)
        .output()
        .expect("run mbpoll");
    assert!(
        out.status.success(),
        "mbpoll {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `[n]: value` lines of mbpoll's output.
fn values(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('[')
                .and_then(|r| r.split_once("]:"))
                .map(|(_, v)| v.trim().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbpoll_reads_and_writes_our_simulator() {
    if !common::on_path("mbpoll") {
        eprintln!("\n\n*** SKIPPED: mbpoll is not on PATH (apt-get install -y mbpoll) ***\n\n");
        return;
    }
    let sim = Simulator::start(SimulatorConfig::from_toml_str(SIM).unwrap())
        .await
        .unwrap();
    let port = sim.addr("d").unwrap().port().to_string();
    let base = ["-m", "tcp", "-a", "1", "-p", port.as_str(), "-0", "-1"];
    // mbpoll [options] host [values to write]
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        let (opts, write): (Vec<&str>, Vec<&str>) = match extra.iter().position(|x| *x == "--write")
        {
            Some(i) => (extra[..i].to_vec(), extra[i + 1..].to_vec()),
            None => (extra.to_vec(), vec![]),
        };
        a.extend(opts);
        a.push("127.0.0.1");
        a.extend(write);
        let a: Vec<String> = a.into_iter().map(String::from).collect();
        tokio::task::spawn_blocking(move || {
            mbpoll(&a.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let regs = values(&run(&["-r", "0", "-c", "5", "-t", "4:hex"]).await.unwrap());
    assert_eq!(regs, ["0x002A", "0x3344", "0x1122", "0xC020", "0x0000"]);
    let coils = values(&run(&["-r", "0", "-c", "2", "-t", "0"]).await.unwrap());
    assert_eq!(coils, ["1", "0"]);
    // Write 162 (1.62 % at scale 0.01) into holding 0; it holds over the generator.
    run(&["-r", "0", "-t", "4", "--write", "162"])
        .await
        .unwrap();
    let regs = values(&run(&["-r", "0", "-c", "1", "-t", "4"]).await.unwrap());
    assert_eq!(regs, ["162"]);
    // An address the simulator does not define: mbpoll reports the exception.
    let out = tokio::task::spawn_blocking({
        let port = port.clone();
        move || {
            Command::new("mbpoll")
                .args([
                    "-m",
                    "tcp",
                    "-a",
                    "1",
                    "-p",
                    &port,
                    "-0",
                    "-1",
                    "-r",
                    "50",
                    "-c",
                    "1",
                    "-t",
                    "4",
                    "127.0.0.1",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.to_lowercase().contains("illegal data address"),
        "{text}"
    );
    sim.shutdown().await;
}
