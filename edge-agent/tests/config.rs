//! The configuration files: the shipped examples load, and mistakes are refused with clear
//! messages that name the place.

use edge_agent::config::{Function, Transport};
use edge_agent::plan::plan_requests;
use edge_agent::{AgentConfig, ConfigError, SimulatorConfig};

fn example(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

#[test]
fn example_agent_config_loads() {
    let cfg = AgentConfig::from_toml_str(&example("agent.toml")).unwrap();
    assert_eq!(cfg.agent.as_str(), "mine-01-edge");
    assert_eq!(cfg.devices.len(), 2);
    assert_eq!(cfg.devices[1].transport, Transport::RtuOverTcp);
    assert_eq!(cfg.mqtt_inputs[0].points.len(), 2);
    assert_eq!(cfg.client_id(), "mine-01-edge");
    assert_eq!(
        cfg.buffer_path(),
        std::path::PathBuf::from("data/mine-01-edge/buffer.sqlite")
    );
    // CH4-101, CH4-102 and CO-101 (holding 0..3) are read in one request.
    let plan = plan_requests(&cfg.devices[0].points);
    let holding: Vec<_> = plan
        .iter()
        .filter(|r| r.function == Function::Holding)
        .collect();
    assert_eq!(
        (
            holding[0].address,
            holding[0].count,
            holding[0].points.len()
        ),
        (0, 4, 3)
    );
    let birth = cfg.catalogue("e");
    assert_eq!(birth.points.len(), 12);
    assert_eq!(
        birth
            .site
            .as_ref()
            .unwrap()
            .region
            .as_ref()
            .unwrap()
            .as_str(),
        "410522"
    );
}

#[test]
fn example_simulator_config_loads_and_matches_the_agent() {
    let sim = SimulatorConfig::from_toml_str(&example("simulator.toml")).unwrap();
    let agent = AgentConfig::from_toml_str(&example("agent.toml")).unwrap();
    for d in &agent.devices {
        let sd = sim
            .devices
            .iter()
            .find(|s| s.name == d.name)
            .expect("simulated");
        assert_eq!(sd.listen.port(), d.port);
        assert_eq!(sd.transport, d.transport);
        for p in &d.points {
            let v = sd
                .values
                .iter()
                .find(|v| v.function == p.function && v.address == p.address && v.bit == p.bit);
            let v = v.unwrap_or_else(|| panic!("{} is not simulated", p.point));
            assert_eq!(
                (v.ty(), v.order, v.scale),
                (p.ty(), p.order, p.scale),
                "{}",
                p.point
            );
        }
    }
}

fn invalid(toml: &str) -> Vec<String> {
    match AgentConfig::from_toml_str(toml) {
        Err(ConfigError::Invalid(v)) => v,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

const BASE: &str = r#"
agent = "a1"
site = "s1"
[[devices]]
name = "plc"
host = "127.0.0.1"
"#;

#[test]
fn mistakes_are_refused_with_the_place_named() {
    let e = invalid(&format!("{BASE}[[devices.points]]\npoint = \"X\"\nfunction = \"holding\"\naddress = 0\ntype = \"bool\"\nquantity = \"level\"\nunit = \"m\"\n"));
    assert!(
        e.iter()
            .any(|m| m.contains("devices[0] (plc) point X") && m.contains("needs bit")),
        "{e:?}"
    );

    let e = invalid(&format!("{BASE}[[devices.points]]\npoint = \"X\"\nfunction = \"coil\"\naddress = 0\ntype = \"f32\"\nquantity = \"level\"\nunit = \"m\"\n"));
    assert!(e.iter().any(|m| m.contains("type must be bool")), "{e:?}");

    let e = invalid(&format!(
        "{BASE}[[devices.points]]\npoint = \"X\"\nfunction = \"holding\"\naddress = 65535\ntype = \"u32\"\nquantity = \"level\"\nunit = \"m\"\n\
         [[devices.points]]\npoint = \"X\"\nfunction = \"holding\"\naddress = 0\nquantity = \"level\"\nunit = \"m\"\nscale = 0\n"
    ));
    assert!(e.iter().any(|m| m.contains("runs past 65535")), "{e:?}");
    assert!(
        e.iter().any(|m| m.contains("named more than once")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains("scale")), "{e:?}");

    // TLS: files on a plain URL, and a CA file that is not there, are named.
    let point = "[[devices.points]]\npoint = \"X\"\nfunction = \"holding\"\naddress = 0\nquantity = \"level\"\nunit = \"m\"\n";
    let e = invalid(&format!(
        "{BASE}{point}[mqtt]\nurl = \"mqtt://b\"\nca_file = \"/etc/hrs/ca.pem\"\n"
    ));
    assert!(e.iter().any(|m| m.contains("plain MQTT")), "{e:?}");
    let e = invalid(&format!(
        "{BASE}{point}[mqtt]\nurl = \"mqtts://b\"\nca_file = \"/nonexistent/ca.pem\"\n"
    ));
    assert!(
        e.iter()
            .any(|m| m.contains("ca_file") && m.contains("/nonexistent/ca.pem")),
        "{e:?}"
    );

    let e = invalid("agent = \"a1\"\nsite = \"s1\"\n");
    assert!(e[0].contains("nothing to read"), "{e:?}");
}

#[test]
fn unknown_keys_and_bad_ids_are_refused() {
    let err = AgentConfig::from_toml_str("agent = \"a1\"\nsite = \"s1\"\npoll_interval = 5\n")
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `poll_interval`"),
        "{err}"
    );
    let err = AgentConfig::from_toml_str("agent = \"A1\"\nsite = \"s1\"\n").unwrap_err();
    assert!(err.to_string().contains("agent id"), "{err}");
    let err = AgentConfig::from_toml_str(&format!(
        "{BASE}[[devices.points]]\npoint = \"X\"\nfunction = \"holding\"\naddress = 0\norder = \"ACBD\"\nquantity = \"level\"\nunit = \"m\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("ACBD"), "{err}");
}

#[test]
fn environment_overrides_the_broker_and_prefix() {
    let mut cfg = AgentConfig::from_toml_str(&example("agent.toml")).unwrap();
    cfg.apply_env(|k| match k {
        "HRS_MQTT_URL" => Some("mqtt://10.0.0.5:1999".into()),
        "HRS_TOPIC_PREFIX" => Some("site/x".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(cfg.mqtt.url, "mqtt://10.0.0.5:1999");
    assert_eq!(cfg.mqtt.topic_prefix, "site/x");
    assert!(cfg
        .apply_env(|k| (k == "HRS_MQTT_URL").then(|| "http://x".to_string()))
        .is_err());
}

#[test]
fn example_vehicles_config_loads() {
    use edge_agent::jt808::VehicleClass;
    let cfg = AgentConfig::from_toml_str(&example("vehicles.toml")).unwrap();
    assert!(
        cfg.devices.is_empty() && cfg.mqtt_inputs.is_empty(),
        "a JT/T 808 listener alone is a valid agent"
    );
    let l = &cfg.jt808[0];
    assert_eq!(l.listen.port(), 7611);
    assert_eq!(l.site.as_str(), "trans-01");
    assert_eq!(l.default_class, VehicleClass::Freight);
    assert_eq!(
        l.vehicles[1].class,
        Some(VehicleClass::DangerousGoods),
        "hazmat"
    );
    assert_eq!(l.vehicles[2].class, Some(VehicleClass::SchoolBus));
    assert!(l.auth_required);
    assert_eq!(
        (l.max_frame_bytes, l.answer_queue, l.max_auth_failures),
        (4096, 64, 5)
    );
    assert_eq!(
        (0..3)
            .map(|k| l.shard_agent(&cfg.agent, k))
            .collect::<Vec<_>>(),
        ["trans-01-808-1", "trans-01-808-2", "trans-01-808-3"]
    );
}

#[test]
fn jt808_mistakes_name_their_key() {
    let base = r#"
agent = "a"
site = "s"
[[jt808]]
listen = "127.0.0.1:7611"
site = "s"
"#;
    assert!(AgentConfig::from_toml_str(base).is_ok());
    let refused = |extra: &str| -> String {
        match AgentConfig::from_toml_str(&format!("{base}{extra}")) {
            Err(ConfigError::Invalid(e)) => e.join("\n"),
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {extra}"),
        }
    };
    assert!(
        refused("idle_timeout_ms = 5\n").contains("jt808[0] (127.0.0.1:7611): idle_timeout_ms = 5")
    );
    assert!(refused("max_vehicles_per_shard = 6000\n").contains("max_vehicles_per_shard"));
    assert!(refused("shards = 0\n").contains("shards = 0"));
    assert!(
        refused("bogus = 1\n").contains("bogus"),
        "unknown keys are refused"
    );
    assert!(refused("default_class = \"tank\"\n").contains("tank"));
    let e = refused("[[jt808.vehicles]]\nterminal = \"13x\"\n");
    assert!(
        e.contains("vehicles[0] (13x): terminal must be 1 to 20 digits"),
        "{e}"
    );
    let e = refused(
        "[[jt808.vehicles]]\nterminal = \"138\"\n[[jt808.vehicles]]\nterminal = \"0138\"\n",
    );
    assert!(e.contains("listed twice"), "{e}");
    // Two listeners publishing under one agent id.
    let e = refused("[[jt808]]\nlisten = \"127.0.0.1:7612\"\nsite = \"s\"\n");
    assert!(e.contains("agent id a-jt808 is taken"), "{e}");
    // Nothing to read at all.
    assert!(AgentConfig::from_toml_str("agent = \"a\"\nsite = \"s\"\n").is_err());
}
