//! Addresses as integrators write them, in the TOML configuration: the table digit sets the
//! function, `unit!` the unit id, `.bit` the bit; disagreements are refused naming the point.

use edge_agent::config::Function;
use edge_agent::plan::plan_requests;
use edge_agent::AgentConfig;

const HEAD: &str =
    "agent = \"a\"\nsite = \"s\"\n[[devices]]\nname = \"plc\"\nhost = \"127.0.0.1\"\nunit_id = 1\n";

fn load(points: &str) -> Result<AgentConfig, String> {
    AgentConfig::from_toml_str(&format!("{HEAD}points = [\n{points}\n]\n"))
        .map_err(|e| e.to_string())
}

#[test]
fn written_addresses_resolve_to_table_offset_unit_and_bit() {
    let cfg = load(
        r#"{ point = "A", address = "40001", quantity = "level", unit = "m" },
           { point = "B", address = "400002", quantity = "level", unit = "m" },
           { point = "C", address = "3!300010", type = "f32", quantity = "level", unit = "m" },
           { point = "D", address = "40003.4", type = "bool", quantity = "power_cut", unit = "bool" },
           { point = "E", address = "10001", quantity = "power_cut", unit = "bool" },
           { point = "F", function = "input", address = 7, quantity = "level", unit = "m" },
           { point = "G", function = "holding", address = "40004", quantity = "level", unit = "m" }"#,
    )
    .unwrap();
    let p = &cfg.devices[0].points;
    let got: Vec<(Function, u16, Option<u8>, Option<u8>)> = p
        .iter()
        .map(|p| (p.function, p.address, p.unit_id, p.bit))
        .collect();
    assert_eq!(
        got,
        vec![
            (Function::Holding, 0, None, None),
            (Function::Holding, 1, None, None),
            (Function::Input, 9, Some(3), None),
            (Function::Holding, 2, None, Some(4)),
            (Function::DiscreteInput, 0, None, None),
            (Function::Input, 7, None, None),
            (Function::Holding, 3, None, None),
        ]
    );
    assert_eq!(p[2].unit(&cfg.devices[0]), 3);
    assert_eq!(p[0].unit(&cfg.devices[0]), 1);
    assert_eq!(p[2].written_address().to_string(), "3!300010");
    // A, B, D, G: holding 0..3 in one request of unit 1; C alone for unit 3.
    let plan = plan_requests(p);
    assert!(plan.iter().any(|r| r.unit.is_none()
        && r.function == Function::Holding
        && (r.address, r.count) == (0, 4)));
    assert!(plan
        .iter()
        .any(|r| r.unit == Some(3) && (r.address, r.count) == (9, 2)));
    // The resolved form serializes to TOML that loads the same.
    let again: AgentConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again.devices[0].points, cfg.devices[0].points);
}

#[test]
fn disagreements_and_bad_forms_are_refused_naming_the_point() {
    for (points, says) in [
        (
            r#"{ point = "X", function = "input", address = "40001", quantity = "level", unit = "m" }"#,
            "point X: function = input but address 400001 names a holding table",
        ),
        (
            r#"{ point = "X", address = 5, quantity = "level", unit = "m" }"#,
            "point X: address 5 is a zero-based offset: set function",
        ),
        (
            r#"{ point = "X", address = "2!40001", unit_id = 3, quantity = "level", unit = "m" }"#,
            "point X: unit_id = 3 but the address says 2",
        ),
        (
            r#"{ point = "X", address = "40000", quantity = "level", unit = "m" }"#,
            "address \"40000\": the number after the table digit is 1-based: 1..9999",
        ),
        (
            r#"{ point = "X", function = "holding", address = 70000, quantity = "level", unit = "m" }"#,
            "address 70000 must be 0..65535",
        ),
    ] {
        let e = load(points).expect_err(points);
        assert!(e.contains(says), "{points}\n{e}");
    }
}
