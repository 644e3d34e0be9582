//! `gateway check --connect` against real services: a Mosquitto that asks for a password
//! (a password file, no anonymous clients) and a PostgreSQL port nobody listens on. With the
//! wrong broker password and the absent store, the broker and the store are each named in
//! one line saying what went wrong, the exit status is 1, and no secret is printed; with the
//! right password (read from a `_FILE`) and a SQLite store, every line says ok.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use system_tests::*;

const PASSWORD: &str = "Gw-Broker-2026";

async fn password_broker(dir: &Path) -> (Proc, u16) {
    let own = dir.join("broker");
    std::fs::create_dir_all(&own).unwrap();
    let passwd = own.join("passwd");
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["gateway", PASSWORD])
        .output()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(out.status.success(), "{out:?}");
    let port = free_port();
    let conf = own.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {}\nlistener {port} 127.0.0.1\nlog_dest file {}\n",
            passwd.display(),
            own.join("mosquitto.log").display()
        ),
    )
    .unwrap();
    let _ = Command::new("chown")
        .arg("-R")
        .arg("mosquitto:")
        .arg(&own)
        .status();
    let proc = Proc::spawn(
        "mosquitto",
        Command::new("mosquitto").arg("-c").arg(&conf),
        dir,
    )
    .unwrap();
    wait_port(port, Duration::from_secs(10)).await.unwrap();
    (proc, port)
}

/// `gateway check --connect` with these variables: (exit code, standard output).
fn check(dir: &Path, vars: &[(&str, String)]) -> (i32, String, String) {
    let out = Command::new(bin_path("gateway"))
        .args(["check", "--connect"])
        .env("HRS_DATA_DIR", dir.join("gw"))
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lines<'a>(out: &'a str, what: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with("ok  ") || l.starts_with("FAIL"))
        .filter(|l| l[5..].starts_with(what))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_names_a_wrong_broker_password_and_an_absent_store_in_one_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_broker, port) = password_broker(dir).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let absent = free_port();
    let (code, out, err) = check(
        dir,
        &[
            ("HRS_MQTT_URL", url.clone()),
            ("HRS_MQTT_USERNAME", "gateway".into()),
            ("HRS_MQTT_PASSWORD_FILE", wrong.display().to_string()),
            (
                "HRS_STORE_URL",
                format!("postgres://postgres:pg-Secret@127.0.0.1:{absent}/hrs"),
            ),
        ],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    let broker = lines(&out, "broker");
    assert_eq!(broker.len(), 1, "{out}");
    assert!(
        broker[0].starts_with("FAIL")
            && broker[0].contains("refused")
            && broker[0].contains("password")
            && broker[0].contains("user gateway"),
        "{}",
        broker[0]
    );
    let store = lines(&out, "store");
    assert_eq!(store.len(), 1, "{out}");
    assert!(
        store[0].starts_with("FAIL")
            && store[0].contains(&format!("127.0.0.1:{absent}"))
            && store[0].contains("no answer"),
        "{}",
        store[0]
    );
    for secret in ["not-the-password", "pg-Secret"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed:\n{out}\n{err}"
        );
    }
    assert!(
        out.contains("mqtt.password = \"********\"  # file ")
            && out.contains("HRS_MQTT_PASSWORD_FILE"),
        "the password's source is named: {out}"
    );

    // The right password from its file, the default SQLite store: all ok.
    let right = dir.join("password");
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    let (code, out, err) = check(
        dir,
        &[
            ("HRS_MQTT_URL", url),
            ("HRS_MQTT_USERNAME", "gateway".into()),
            ("HRS_MQTT_PASSWORD_FILE", right.display().to_string()),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        lines(&out, "broker")[0].contains("connected as gateway"),
        "{out}"
    );
    assert!(lines(&out, "store")[0].starts_with("ok"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");
}

/// `edge-agent check --connect`: the broker's refusal of a wrong password (from
/// `HRS_MQTT_PASSWORD_FILE`) and a Modbus device nobody answers for, one line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_check_connect_names_the_broker_and_each_device() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_broker, port) = password_broker(dir).await;
    let plc = free_port();
    let conf = dir.join("agent.toml");
    std::fs::write(
        &conf,
        format!(
            "agent = \"mine-01-edge\"\nsite = \"mine-01\"\ndata_dir = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nusername = \"gateway\"\n[[devices]]\nname = \"gas-plc\"\nhost = \"127.0.0.1\"\nport = {plc}\nunit_id = 1\ntimeout_ms = 1000\npoll_interval_ms = 1000\n  [[devices.points]]\n  point = \"CH4-101\"\n  function = \"holding\"\n  address = 0\n  type = \"u16\"\n  scale = 0.01\n  quantity = \"ch4\"\n  unit = \"%\"\n",
            dir.join("agent").display()
        ),
    )
    .unwrap();
    let run = |password: &str| {
        let file = dir.join("pw");
        std::fs::write(&file, format!("{password}\n")).unwrap();
        let out = Command::new(bin_path("edge-agent"))
            .args(["check", "--connect", "--config"])
            .arg(&conf)
            .env("HRS_MQTT_PASSWORD_FILE", &file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run("wrong-one");
    assert_eq!(code, 1, "{out}");
    let broker = lines(&out, "broker");
    assert!(
        broker.len() == 1 && broker[0].starts_with("FAIL") && broker[0].contains("password"),
        "{out}"
    );
    let device = lines(&out, "device gas-plc");
    assert!(
        device.len() == 1
            && device[0].starts_with("FAIL")
            && device[0].contains(&format!("127.0.0.1:{plc}")),
        "{out}"
    );
    assert!(!out.contains("wrong-one"), "{out}");
    let (_, out) = run(PASSWORD);
    assert!(
        lines(&out, "broker")[0].starts_with("ok")
            && lines(&out, "broker")[0].contains("connected as gateway"),
        "{out}"
    );
    assert!(
        out.contains("password ********") && !out.contains(PASSWORD),
        "{out}"
    );
}
