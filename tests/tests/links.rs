//! Encrypted and authenticated links (issue 17), with real programs: a test PKI made by
//! `openssl`, the gateway and edge-agent binaries, a Mosquitto with accounts and the ACL of
//! `docs/broker.md`, and a platform played by Python's `http.server` over TLS that requires a
//! client certificate.
//!
//! - the API over HTTPS with the test CA, and nothing for plain HTTP on the same port; on
//!   SIGHUP a broken certificate file is refused and counted while the rules still reload,
//!   and the API goes on with the certificate it had;
//! - the platform reached over HTTPS on the private CA with the gateway's client certificate;
//!   an endpoint that answers 302 is not followed: its delivery is parked;
//! - an agent that publishes under another site is refused by Mosquitto (its ACL): nothing
//!   of it reaches the gateway, while the same account's own site goes through;
//! - with `ingest.registered_sites_only`, a site the broker lets through but the gateway does
//!   not know is refused, counted and dead-lettered.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use system_tests::*;

/// A client that trusts only the test CA.
fn https_client(pki: &TestPki) -> reqwest::Client {
    let ca = std::fs::read(&pki.ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The platform: HTTPS with the test PKI's server certificate, client certificates required
/// (signed by the test CA). Every POST is printed as one JSON line: path, the client
/// certificate's CN and the body. `/moved...` answers 302 to `/elsewhere`.
fn platform(dir: &Path, pki: &TestPki, port: u16) -> Proc {
    let script = dir.join("platform.py");
    std::fs::write(
        &script,
        r#"
import http.server, json, ssl, sys
cert, key, ca, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        print(json.dumps({"path": self.path, "cn": subject.get("commonName"),
                          "body": json.loads(body or b"null")}), flush=True)
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
"#,
    )
    .unwrap();
    let python = std::env::var("HRS_PYTHON").unwrap_or_else(|_| "python3".into());
    Proc::spawn(
        "platform",
        Command::new(python)
            .arg(&script)
            .arg(&pki.server_cert)
            .arg(&pki.server_key)
            .arg(&pki.ca)
            .arg(port.to_string()),
        dir,
    )
    .unwrap()
}

/// `hrs_reloads_total` of `what` with `outcome` on a metrics page (labels in any order).
fn reloads(page: &str, what: &str, outcome: &str) -> Option<f64> {
    page.lines()
        .find(|l| {
            l.starts_with("hrs_reloads_total{")
                && l.contains(&format!("what=\"{what}\""))
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The platform's requests so far (its JSON lines).
fn platform_requests(p: &Proc) -> Vec<Value> {
    p.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_api_and_a_platform_on_a_private_ca_with_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = TestPki::generate(dir).unwrap();
    let broker = Mosquitto::start(dir).await.unwrap();
    let platform_port = free_port();
    let platform = platform(dir, &pki, platform_port);
    wait_port(platform_port, Duration::from_secs(10))
        .await
        .unwrap();
    // Copies of the API's certificate files, so that the test can break them for a reload.
    let (cert, key) = (dir.join("api.pem"), dir.join("api.key"));
    std::fs::copy(&pki.server_cert, &cert).unwrap();
    std::fs::copy(&pki.server_key, &key).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[http]
tls_cert_file = "{cert}"
tls_key_file = "{key}"

[[forwarding.endpoints]]
name = "province"
url = "https://127.0.0.1:{platform_port}/incidents"
ca_file = "{ca}"
client_cert_file = "{client_cert}"
client_key_file = "{client_key}"

[[forwarding.endpoints]]
name = "moved"
url = "https://127.0.0.1:{platform_port}/moved"
ca_file = "{ca}"
client_cert_file = "{client_cert}"
client_key_file = "{client_key}"
"#,
            cert = cert.display(),
            key = key.display(),
            ca = pki.ca.display(),
            client_cert = pki.client_cert.display(),
            client_key = pki.client_key.display(),
        ),
    )
    .unwrap();
    let http_port = free_port();
    let prefix = format!("links{http_port}/v1");
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(&broker.url(), &prefix, http_port, dir)
            .arg("--config")
            .arg(&config),
        dir,
    )
    .unwrap();
    let https = format!("https://127.0.0.1:{http_port}");
    let client = https_client(&pki);
    let logs = || {
        format!(
            "--- gateway\n{}\n--- platform\n{}",
            gateway.log_text(),
            platform.log_text()
        )
    };
    eventually(Duration::from_secs(30), "the API over HTTPS", || async {
        let r = client.get(format!("{https}/readyz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    // Plain HTTP on the same port gets no answer at all.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http_port}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A methane incident goes to the platform over HTTPS with the client certificate.
    let birth = json!({"agent": "edge", "epoch": "e1",
        "site": {"name": "赵固一矿", "category": "coal_mine", "region": "410522"},
        "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face"}]});
    publish(
        broker.port,
        &format!("{prefix}/sites/mine-01/edge/birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let batch = json!({"agent": "edge", "epoch": "e1", "seq": 1,
        "readings": [{"point": "CH4-101", "ts": ts, "value": 1.8}]});
    publish(
        broker.port,
        &format!("{prefix}/sites/mine-01/edge/readings"),
        batch.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();
    let delivered = eventually(
        Duration::from_secs(30),
        "the platform's incident",
        || async {
            platform_requests(&platform)
                .into_iter()
                .find(|r| r["path"] == "/incidents" && r["body"]["event"] == "raised")
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(
        delivered["cn"], "mine-01-edge",
        "the client certificate's CN"
    );
    assert_eq!(delivered["body"]["site"], "mine-01");

    // The endpoint that answers 302 is not followed: its delivery is parked with the status.
    let parked = eventually(
        Duration::from_secs(30),
        "the redirected delivery parked",
        || async {
            let r = client
                .get(format!("{https}/api/v1/deliveries/parked"))
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v.as_array()?
                .iter()
                .find(|p| p["target"] == "endpoint:moved")
                .cloned()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(parked["status"], 302, "{parked}");
    let paths: Vec<Value> = platform_requests(&platform)
        .into_iter()
        .map(|r| r["path"].clone())
        .collect();
    assert!(
        !paths.contains(&json!("/elsewhere")),
        "the redirect was followed: {paths:?}"
    );

    // SIGHUP with a broken certificate file: the TLS reload is refused and counted, the rule
    // reload still done, and the API goes on over HTTPS with the certificate it had.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let metrics = format!("{https}/metrics");
    let page = || async { client.get(&metrics).send().await.ok()?.text().await.ok() };
    Command::new("kill")
        .arg("-HUP")
        .arg(gateway.pid().to_string())
        .status()
        .unwrap();
    let (tls_refused, rules_done) =
        eventually(Duration::from_secs(20), "both reloads counted", || async {
            let p = page().await?;
            let tls = reloads(&p, "tls", "refused")?;
            let rules = reloads(&p, "rules", "done")?;
            Some((tls, rules))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!((tls_refused, rules_done), (1.0, 1.0));
    let r = client.get(format!("{https}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The file mended: the next SIGHUP takes it.
    std::fs::copy(&pki.server_cert, &cert).unwrap();
    Command::new("kill")
        .arg("-HUP")
        .arg(gateway.pid().to_string())
        .status()
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the certificate reloaded",
        || async { reloads(&page().await?, "tls", "done").filter(|v| *v == 1.0) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
}

const GATEWAY_PASSWORD: &str = "Gw-passw0rd";
const AGENT_PASSWORD: &str = "Agent-passw0rd";

/// A Mosquitto with accounts and the ACL of `docs/broker.md` for `prefix`: the gateway, a
/// watcher that reads everything, and the agents `mine-01-edge` and `mine-03-edge`.
async fn broker_with_acl(dir: &Path, prefix: &str) -> (Proc, u16, std::path::PathBuf) {
    let own = dir.join("mosquitto-acl");
    std::fs::create_dir_all(&own).unwrap();
    let passwd = own.join("passwd");
    for (i, (user, password)) in [
        ("hrs-gateway", GATEWAY_PASSWORD),
        ("watcher", AGENT_PASSWORD),
        ("mine-01-edge", AGENT_PASSWORD),
        ("mine-03-edge", AGENT_PASSWORD),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cmd = Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd.arg(&passwd).arg(user).arg(password).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let acl = own.join("acl");
    std::fs::write(
        &acl,
        format!(
            "user hrs-gateway\ntopic read {prefix}/sites/#\ntopic read {prefix}/weather/#\ntopic write {prefix}/incidents/#\n\n\
             user watcher\ntopic read {prefix}/#\n\n\
             user mine-01-edge\ntopic write {prefix}/sites/mine-01/mine-01-edge/#\n\n\
             user mine-03-edge\ntopic write {prefix}/sites/mine-03/mine-03-edge/#\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = own.join("mosquitto.log");
    let conf = own.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {}\nacl_file {}\nlistener {port} 127.0.0.1\nlog_dest file {}\nlog_type all\n",
            passwd.display(),
            acl.display(),
            log.display()
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
    (proc, port, log)
}

/// An edge agent for `site` as `agent`, logging in as `account`, reading the methane
/// simulator at `plc_port`.
fn agent(
    dir: &Path,
    prefix: &str,
    port: u16,
    site: &str,
    agent: &str,
    account: &str,
    plc_port: u16,
) -> Proc {
    let data_dir = dir.join(format!("{agent}-data"));
    let who = TestAgent {
        name: agent,
        agent,
        site,
        data_dir: &data_dir,
    };
    let mqtt = format!(
        "url = \"mqtt://127.0.0.1:{port}\"\nusername = \"{account}\"\npassword = \"{AGENT_PASSWORD}\""
    );
    let (config, _) = methane_agent_config(dir, &who, prefix, plc_port, &mqtt);
    start_agent(dir, agent, &config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_keeps_agents_apart_and_the_gateway_admits_only_registered_sites() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let http_port = free_port();
    let prefix = format!("acl{http_port}/v1");
    let (_broker, port, broker_log) = broker_with_acl(dir, &prefix).await;
    let mut watch = Watcher::start_as(
        port,
        &format!("{prefix}/#"),
        Some(("watcher", AGENT_PASSWORD)),
    )
    .await
    .unwrap();
    let (_sim, plc_port) = methane_simulator(dir, 1.2).await.unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        r#"
[ingest]
registered_sites_only = true

[[sites]]
id = "mine-01"
name = "赵固一矿"
category = "coal_mine"
region = "410522"

[[sites]]
id = "mine-02"
name = "鹤壁二矿"
category = "coal_mine"
region = "410600"
"#,
    )
    .unwrap();
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(&format!("mqtt://127.0.0.1:{port}"), &prefix, http_port, dir)
            .arg("--config")
            .arg(&config)
            .env("HRS_MQTT_USERNAME", "hrs-gateway")
            .env("HRS_MQTT_PASSWORD", GATEWAY_PASSWORD),
        dir,
    )
    .unwrap();
    let http = format!("http://127.0.0.1:{http_port}");
    wait_ready(&http).await.unwrap();
    // mine-01's agent as itself; an agent set up for mine-02 that logs in with mine-01's
    // account (so the ACL lets it write only under mine-01); mine-03's agent, which the broker
    // admits but the gateway does not know.
    let own = agent(
        dir,
        &prefix,
        port,
        "mine-01",
        "mine-01-edge",
        "mine-01-edge",
        plc_port,
    );
    let impostor = agent(
        dir,
        &prefix,
        port,
        "mine-02",
        "mine-02-edge",
        "mine-01-edge",
        plc_port,
    );
    let unregistered = agent(
        dir,
        &prefix,
        port,
        "mine-03",
        "mine-03-edge",
        "mine-03-edge",
        plc_port,
    );
    let logs = || {
        format!(
            "--- gateway\n{}\n--- own\n{}\n--- impostor\n{}\n--- unregistered\n{}\n--- broker\n{}",
            gateway.log_text(),
            own.log_text(),
            impostor.log_text(),
            unregistered.log_text(),
            std::fs::read_to_string(&broker_log).unwrap_or_default()
        )
    };

    // The broker refuses the impostor's publishes under mine-02.
    eventually(
        Duration::from_secs(30),
        "the broker's refusal of mine-02",
        || async {
            let log = std::fs::read_to_string(&broker_log).ok()?;
            log.lines()
                .any(|l| {
                    l.contains("Denied PUBLISH") && l.contains(&format!("{prefix}/sites/mine-02/"))
                })
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));

    // The gateway's account reads mine-01 and publishes its incident; the watcher sees it.
    let raised = watch
        .next_json(Duration::from_secs(30), |t, v| {
            t == format!("{prefix}/incidents/mine-01") && v["event"] == "raised"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(raised["value"], 1.2);

    // mine-03 reached the gateway through the broker and was refused there: counted and kept.
    let metrics = format!("{http}/metrics");
    wait_metric(
        &metrics,
        "hrs_messages_refused_total{reason=\"unregistered_site\"}",
        Duration::from_secs(30),
        |v| v >= 1.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let (_, letters) = get_json(&format!("{http}/api/v1/dead-letters?limit=1000"))
        .await
        .unwrap();
    let letter = letters
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == "unregistered_site")
        .cloned()
        .unwrap_or_else(|| panic!("no dead letter: {letters}"));
    assert!(
        letter["topic"]
            .as_str()
            .unwrap()
            .contains("/sites/mine-03/"),
        "{letter}"
    );

    // Nothing of mine-02 reached anyone: the watcher (which reads everything) saw none of its
    // topics, and the gateway knows mine-02 only from its registry, never heard from.
    let mut seen = Vec::new();
    while let Ok((topic, _)) = watch.rx.try_recv() {
        seen.push(topic);
    }
    assert!(
        !seen.iter().any(|t| t.contains("/sites/mine-02/")),
        "{seen:?}"
    );
    let (_, sites) = get_json(&format!("{http}/api/v1/sites")).await.unwrap();
    let ids: Vec<&str> = sites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"mine-03"), "{sites}");
    let mine02 = sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "mine-02")
        .unwrap();
    assert!(mine02["last_seen"].is_null(), "{mine02}");
    let (_, incidents) = get_json(&format!("{http}/api/v1/incidents?site=mine-02"))
        .await
        .unwrap();
    assert_eq!(incidents, json!([]), "no incident of mine-02");
}
