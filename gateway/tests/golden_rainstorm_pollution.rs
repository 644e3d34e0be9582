//! Golden tests of the second round of linkage (issue 25) through `gateway replay`: a rainstorm
//! orange or red over a coal mine calls for its stop-production-and-withdraw check; a
//! heavy-pollution warning of a city calls for the production-restriction check of the sites
//! on its emergency emission-reduction list, and of no other site. Warnings are the weather
//! crate's CAP fixtures; expected events are written by hand.

mod golden;

use golden::{cap, ev, of_rule, of_site, Script};
use serde_json::{json, Value};

const ORANGE: &str = "41050041600000_20260728100000/11B03";
const RED: &str = "41050041600000_20260728130000/11B03";
const POLLUTION_RED: &str = "41050000000000_20261205200000/重污染天气红色预警";

fn site(category: &str, region: &str, listed: bool) -> Value {
    json!({"category": category, "region": region, "emission_reduction_list": listed})
}

fn a_point() -> Value {
    json!([{"point": "T-1", "quantity": "temperature", "unit": "°C", "location": "warehouse"}])
}

/// A site rule's event (subject: the zone `site`, no value, no threshold).
fn site_ev(event: &str, rule: &str, site: &str, severity: &str, at: &str, w: &[&str]) -> String {
    ev(
        event,
        rule,
        site,
        "zone:site",
        severity,
        Value::Null,
        None,
        (at, w),
    )
}

#[tokio::test]
async fn a_rainstorm_orange_then_red_over_a_coal_mine_calls_for_stop_and_withdraw_until_the_cancel()
{
    let mut s = Script::default();
    s.birth("mine-ay", site("coal_mine", "410522", false), a_point())
        .birth("mine-hb", site("coal_mine", "410622", false), a_point()) // Hebi: not under 410500
        .birth("tail-ay", site("tailings", "410522", false), a_point()) // not a coal mine
        .read("mine-ay", "T-1", "2026-07-28T01:00:00Z", json!(20.0))
        .push(cap("cn_rainstorm_orange_410500.xml")) // 02:00Z
        .push(cap("cn_rainstorm_red_410500_update.xml")) // 05:00Z
        .push(cap("cn_rainstorm_410500_cancel.xml")); // 10:00Z
    let events = s.replay().await;
    let rule = "coal.rainstorm.withdraw";
    assert_eq!(
        of_site(&events, "mine-ay"),
        vec![
            site_ev(
                "raised",
                rule,
                "mine-ay",
                "alarm",
                "2026-07-28T02:00:00.000Z",
                &[ORANGE]
            ),
            // Red: one step more severe, the same incident.
            site_ev(
                "escalated",
                rule,
                "mine-ay",
                "critical",
                "2026-07-28T05:00:00.000Z",
                &[RED]
            ),
            site_ev(
                "cleared",
                rule,
                "mine-ay",
                "critical",
                "2026-07-28T10:00:00.000Z",
                &[]
            ),
        ]
    );
    assert!(of_site(&events, "mine-hb").is_empty());
    assert!(of_rule(&events, "tail-ay", rule).is_empty());
    let raised = &events
        .iter()
        .find(|e| e["rule"] == rule && e["event"] == "raised")
        .unwrap();
    assert_eq!(raised["point"], Value::Null);
    assert_eq!(raised["agent"], Value::Null);
}

#[tokio::test]
async fn a_heavy_pollution_red_warning_for_a_city_raises_the_check_at_its_listed_sites_only() {
    let mut s = Script::default();
    s.birth("plant-ay", site("hazchem", "410502", true), a_point()) // listed, in Anyang
        .birth("mine-ay", site("coal_mine", "410522", true), a_point()) // listed, in an Anyang county
        .birth("plant-ay-off", site("hazchem", "410503", false), a_point()) // in Anyang, not listed
        .birth("plant-hb", site("hazchem", "410602", true), a_point()) // listed, in Hebi
        .read("plant-ay", "T-1", "2026-12-05T11:00:00Z", json!(5.0))
        .push(cap("cn_heavy_pollution_red_410500.xml")) // 20:00+08:00 = 12:00Z
        .push(cap("cn_heavy_pollution_410500_cancel.xml")); // 2026-12-07 12:00+08:00 = 04:00Z
    let events = s.replay().await;
    let rule = "pollution.production_restriction";
    for listed in ["plant-ay", "mine-ay"] {
        assert_eq!(
            of_site(&events, listed),
            vec![
                // Red: the base warning one step more severe (orange and red: alarm).
                site_ev(
                    "raised",
                    rule,
                    listed,
                    "alarm",
                    "2026-12-05T12:00:00.000Z",
                    &[POLLUTION_RED]
                ),
                site_ev(
                    "cleared",
                    rule,
                    listed,
                    "alarm",
                    "2026-12-07T04:00:00.000Z",
                    &[]
                ),
            ],
            "{listed}"
        );
    }
    assert_eq!(
        events.len(),
        4,
        "nothing at unlisted or other cities' sites: {events:#?}"
    );
    let raised = events.iter().find(|e| e["event"] == "raised").unwrap();
    assert_eq!(
        raised["message"],
        format!("heavy-pollution warning: production-restriction check of the emission-reduction list: heavy pollution red ({POLLUTION_RED})")
    );
}

#[test]
fn the_emission_reduction_list_is_a_site_attribute_of_the_registry() {
    let config = gateway::config::GatewayConfig::from_toml_str(
        "[[sites]]\nid = \"plant-ay\"\ncategory = \"hazchem\"\nregion = \"410502\"\nemission_reduction_list = true\n",
    )
    .unwrap();
    assert!(config.sites[0].info.emission_reduction_list);
    let ctx = alarm_rules::SiteContext::from(&config.sites[0].info);
    assert!(ctx.emission_reduction_list);
}
