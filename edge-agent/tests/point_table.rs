//! Point tables (点表) from CSV: the shipped example loads with its alarm settings in the
//! birth, and `edge-agent check` refuses a table with a wrong row, naming row and column.

use edge_agent::config::Function;
use edge_agent::decode::{ByteOrder, DataType};
use edge_agent::AgentConfig;
use std::path::Path;
use telemetry::{LimitKey, Quantity};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn the_example_table_loads_into_points_and_limits() {
    let cfg = AgentConfig::from_file(&examples().join("agent-csv.toml")).unwrap();
    let points = &cfg.devices[0].points;
    assert_eq!(points.len(), 6);
    let by = |id: &str| points.iter().find(|p| p.point.as_str() == id).unwrap();
    let ch4 = by("CH4-201");
    assert_eq!(
        (ch4.function, ch4.address, ch4.scale),
        (Function::Holding, 0, 0.01)
    );
    assert_eq!(ch4.quantity, Quantity::Ch4);
    assert_eq!(ch4.range, Some([0.0, 4.0]));
    let co = by("CO-201");
    assert_eq!(
        (co.function, co.address, co.ty()),
        (Function::Holding, 2, DataType::F32)
    );
    let o2 = by("O2-201");
    assert_eq!(
        (o2.function, o2.address, o2.order),
        (Function::Input, 0, ByteOrder::Cdab)
    );
    let t = by("T-201");
    assert_eq!(
        (t.function, t.address, t.ty()),
        (Function::Input, 2, DataType::I16)
    );
    let fan = by("FAN-201");
    assert_eq!((fan.function, fan.address), (Function::Coil, 0));

    let birth = cfg.catalogue("e");
    let spec = birth
        .points
        .iter()
        .find(|p| p.point.as_str() == "CH4-201")
        .unwrap();
    let limits = spec.limits.as_ref().expect("limits in the birth");
    assert_eq!(limits.get(LimitKey::H), Some(1.0));
    assert_eq!(limits.get(LimitKey::Hh), Some(1.5));
    let json = serde_json::to_value(&birth).unwrap();
    assert_eq!(
        json["points"][0]["limits"],
        serde_json::json!({"h": 1.0, "hh": 1.5})
    );
    let o2 = birth
        .points
        .iter()
        .find(|p| p.point.as_str() == "O2-201")
        .unwrap();
    assert_eq!(o2.limits, None);
}

#[test]
fn two_devices_share_one_table_by_its_device_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.csv"),
        "point,device,quantity,unit,address\nA-1,plc-a,level,m,40001\nB-1,plc-b,level,m,40001\nB-2,plc-b,level,m,40002\n",
    )
    .unwrap();
    let toml = "agent = \"a\"\nsite = \"s\"\n\
        [[devices]]\nname = \"plc-a\"\nhost = \"127.0.0.1\"\npoints_csv = \"site.csv\"\n\
        [[devices]]\nname = \"plc-b\"\nhost = \"127.0.0.1\"\npoints_csv = \"site.csv\"\n";
    let cfg = AgentConfig::from_toml_str_in(toml, dir.path()).unwrap();
    assert_eq!(cfg.devices[0].points.len(), 1);
    assert_eq!(cfg.devices[1].points.len(), 2);

    std::fs::write(
        dir.path().join("site.csv"),
        "point,device,quantity,unit,address\nA-1,plc-a,level,m,40001\nC-1,plc-c,level,m,40001\nD-1,,level,m,40001\n",
    )
    .unwrap();
    let err = AgentConfig::from_toml_str_in(toml, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 3: device \"plc-c\" does not read this table"),
        "{err}"
    );
    assert!(err.contains("row 4: no device named"), "{err}");
}

#[test]
fn check_refuses_a_table_with_a_wrong_row_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("points.csv"),
        "点位编号,监测类型,单位,地址,数据类型,系数,高限,高高限\n\
         CH4-1,甲烷,%,40001,u16,0.01,1.0,1.5\n\
         CH4-2,甲烷,%,40000,u16,0.01,1.0,1.5\n\
         CH4-3,甲烷,%,40003,u16,0.01,1.0,1.5\n",
    )
    .unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "agent = \"a\"\nsite = \"s\"\n[[devices]]\nname = \"plc\"\nhost = \"127.0.0.1\"\npoints_csv = \"points.csv\"\n",
    )
    .unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["check", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong row must be refused");
    assert!(
        stderr.contains("row 3, column D (地址): address \"40000\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("row 2") && !stderr.contains("row 4"),
        "{stderr}"
    );

    // Corrected, the same table passes and check counts its points.
    let fixed = std::fs::read_to_string(dir.path().join("points.csv"))
        .unwrap()
        .replace("40000", "40002");
    std::fs::write(dir.path().join("points.csv"), fixed).unwrap();
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 points"), "{stdout}");
}
