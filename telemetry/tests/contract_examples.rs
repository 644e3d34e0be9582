//! Every JSON example of the external contract (`/work/shared/contract.md`, version 1) decodes
//! with telemetry's codec and re-encodes to the same meaning.
//!
//! The examples are copied verbatim from the contract. For each one:
//! decode -> encode -> decode gives the same value (compared as `serde_json::Value` and as the
//! typed value), the re-encoded JSON means what the original meant (numbers compared as
//! numbers, times as instants, defaults the encoder spells out named explicitly), and the key
//! fields are checked one by one.

use serde_json::{json, Value as Json};
use telemetry::{
    decode_batch, decode_catalogue, decode_status, encode_batch, parse_time, AgentId, AgentState,
    Batch, Category, DecodeLimits, EventKind, Incident, IncidentEvent, IncidentState, Position,
    Quality, Quantity, Severity, SiteId, Timestamp, Topic, TopicScheme, Unit, Value,
};

const STATUS: &str = r#"{"agent":"mine-01-edge","state":"online","ts":"2026-11-28T10:00:00Z"}"#;

const CATALOGUE: &str = r#"{"agent":"mine-01-edge","epoch":"7f3a","site":{"name":"Zhaogu No.1 mine","category":"coal_mine","region":"410522","lat":36.10,"lon":114.30},
 "points":[
  {"point":"CH4-101","quantity":"ch4","unit":"%","location":"working_face","name":"1201 working face methane",
   "range":[0,4],"interval_ms":10000,"tags":{"zone":"1201"}},
  {"point":"FEED-1201","quantity":"power_cut","unit":"bool","tags":{"zone":"1201"}},
  {"point":"H2S-3","quantity":"toxic","gas":"h2s","unit":"ppm","location":"tank_farm"},
  {"point":"IL-R3","quantity":"interlock_bypass","unit":"bool","name":"reactor R3 high-temperature interlock bypass"},
  {"point":"TRK-YA12345","quantity":"position","unit":"wgs84","tags":{"vehicle_class":"hazmat"}}]}"#;

const BATCH: &str = r#"{"agent":"mine-01-edge","epoch":"7f3a","seq":42,"readings":[
 {"point":"CH4-101","ts":"2026-11-28T10:00:00.000Z","value":0.42,"quality":"good"},
 {"point":"IL-R3","ts":"2026-11-28T10:00:00.000Z","value":true},
 {"point":"CH4-102","ts":"2026-11-28T10:00:00.000Z","value":null,"quality":"bad","reason":"modbus timeout"},
 {"point":"TRK-YA12345","ts":"2026-11-28T10:00:00.000Z",
  "value":{"lat":36.0975,"lon":114.3928,"speed_kmh":82.5,"heading":90,"alt_m":75}}]}"#;

const INCIDENT: &str = r#"{"id":"01JD8X...","rule":"coal.ch4.working_face","rule_version":"3f9c1a","site":"mine-01","agent":"mine-01-edge",
 "point":"CH4-101","severity":"critical","state":"active","value":1.62,"threshold":1.5,
 "raised_at":"2026-11-28T10:00:00Z","acked_at":null,"acked_by":null,"cleared_at":null,
 "closed_at":null,"closed_by":null,"note":null,"late":false,"previous":null,
 "message":"CH4 1.62 % >= power-off level 1.5 % at working face","warnings":[]}"#;

/// The contract's incident plus the four fields an event adds.
fn incident_event_example() -> Json {
    let mut event: Json = serde_json::from_str(INCIDENT).unwrap();
    let obj = event.as_object_mut().unwrap();
    obj.insert("event".into(), json!("raised"));
    obj.insert("event_id".into(), json!("01JD8X...-1"));
    obj.insert("event_seq".into(), json!(1));
    obj.insert("at".into(), json!("2026-11-28T10:00:00.000Z"));
    event
}

fn t(s: &str) -> Timestamp {
    parse_time(s).unwrap()
}

/// The gateway clock for these examples: a few seconds after the readings were taken.
fn now() -> Timestamp {
    t("2026-11-28T10:00:05Z")
}

fn agent() -> AgentId {
    AgentId::new("mine-01-edge").unwrap()
}

/// Whether `encoded` means what `original` meant: every field of `original` is in `encoded`
/// with the same meaning (numbers as numbers, RFC 3339 strings as instants), and every field
/// only `encoded` has is one of `defaults` with exactly the default's value.
fn assert_same_meaning(original: &Json, encoded: &Json, defaults: &[(&str, Json)]) {
    fn walk(path: &str, a: &Json, b: &Json, defaults: &[(&str, Json)]) {
        match (a, b) {
            (Json::Number(x), Json::Number(y)) => {
                assert_eq!(x.as_f64(), y.as_f64(), "{path}: number {x} became {y}");
            }
            (Json::String(x), Json::String(y)) if x != y => {
                let (tx, ty) = (parse_time(x), parse_time(y));
                assert!(tx.is_ok() && tx == ty, "{path}: {x:?} became {y:?}");
            }
            (Json::Array(x), Json::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{path}: array length changed");
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), x, y, defaults);
                }
            }
            (Json::Object(x), Json::Object(y)) => {
                for (k, xv) in x {
                    let yv = y
                        .get(k)
                        .unwrap_or_else(|| panic!("{path}.{k} was lost in re-encoding"));
                    walk(&format!("{path}.{k}"), xv, yv, defaults);
                }
                for (k, yv) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                    let default = defaults.iter().find(|(d, _)| d == k);
                    assert!(
                        default.is_some_and(|(_, dv)| dv == yv),
                        "{path}.{k} = {yv} appeared in re-encoding and is not a known default"
                    );
                }
            }
            _ => assert_eq!(a, b, "{path}"),
        }
    }
    walk("$", original, encoded, defaults);
}

#[test]
fn agent_status_example_round_trips() {
    let limits = DecodeLimits::default();
    let status = decode_status(STATUS.as_bytes(), Some(&agent()), &limits).unwrap();
    assert_eq!(status.agent, agent());
    assert_eq!(status.state, AgentState::Online);
    assert_eq!(status.ts, t("2026-11-28T10:00:00.000Z"));

    let encoded = serde_json::to_vec(&status).unwrap();
    let again = decode_status(&encoded, Some(&agent()), &limits).unwrap();
    assert_eq!(again, status);
    let encoded: Json = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(encoded, serde_json::to_value(&again).unwrap());
    assert_same_meaning(&serde_json::from_str(STATUS).unwrap(), &encoded, &[]);
}

#[test]
fn last_will_says_offline() {
    let will = r#"{"agent":"mine-01-edge","state":"offline","ts":"2026-11-28T18:00:00+08:00"}"#;
    let status = decode_status(will.as_bytes(), Some(&agent()), &DecodeLimits::default()).unwrap();
    assert_eq!(status.state, AgentState::Offline);
    assert_eq!(
        status.ts,
        t("2026-11-28T10:00:00Z"),
        "+08:00 names the same instant as 10:00Z"
    );
    let encoded = serde_json::to_value(&status).unwrap();
    assert_eq!(encoded["state"], "offline");
    assert_same_meaning(&serde_json::from_str(will).unwrap(), &encoded, &[]);
}

#[test]
fn point_catalogue_example_round_trips() {
    let limits = DecodeLimits::default();
    let decoded = decode_catalogue(CATALOGUE.as_bytes(), Some(&agent()), &limits).unwrap();
    assert_eq!(decoded.refused, Vec::<(usize, String)>::new());
    let cat = &decoded.catalogue;
    assert_eq!(cat.agent, agent());
    assert_eq!(cat.epoch, "7f3a");

    let site = cat.site.as_ref().expect("the example names its site");
    assert_eq!(site.name.as_deref(), Some("Zhaogu No.1 mine"));
    assert_eq!(site.category, Some(Category::CoalMine));
    assert_eq!(site.region.as_ref().map(|r| r.as_str()), Some("410522"));
    assert_eq!(site.lat, Some(36.10));
    assert_eq!(site.lon, Some(114.30));

    let names: Vec<&str> = cat.points.iter().map(|p| p.point.as_str()).collect();
    assert_eq!(
        names,
        ["CH4-101", "FEED-1201", "H2S-3", "IL-R3", "TRK-YA12345"],
        "order is kept"
    );

    let ch4 = &cat.points[0];
    assert_eq!(ch4.quantity, Quantity::Ch4);
    assert_eq!(ch4.unit, Unit::PercentVol);
    assert_eq!(ch4.location.as_deref(), Some("working_face"));
    assert_eq!(ch4.name.as_deref(), Some("1201 working face methane"));
    assert_eq!(ch4.range, Some([0.0, 4.0]));
    assert_eq!(ch4.interval_ms, Some(10_000));
    assert_eq!(ch4.tag("zone"), Some("1201"));
    assert_eq!(ch4.gas, None);

    let feed = &cat.points[1];
    assert_eq!(
        (feed.quantity.clone(), feed.unit.clone()),
        (Quantity::PowerCut, Unit::Bool)
    );
    assert_eq!(
        feed.tag("zone"),
        ch4.tag("zone"),
        "the feed sensor proves the power cut of the methane zone"
    );
    assert_eq!(
        (feed.range, feed.interval_ms, feed.location.as_deref()),
        (None, None, None)
    );

    let h2s = &cat.points[2];
    assert_eq!(
        (h2s.quantity.clone(), h2s.unit.clone()),
        (Quantity::Toxic, Unit::Ppm)
    );
    assert_eq!(h2s.gas.as_deref(), Some("h2s"));
    assert_eq!(h2s.location.as_deref(), Some("tank_farm"));
    assert!(h2s.tags.is_empty());

    let bypass = &cat.points[3];
    assert_eq!(
        (bypass.quantity.clone(), bypass.unit.clone()),
        (Quantity::InterlockBypass, Unit::Bool)
    );
    assert_eq!(
        bypass.name.as_deref(),
        Some("reactor R3 high-temperature interlock bypass")
    );

    let truck = &cat.points[4];
    assert_eq!(
        (truck.quantity.clone(), truck.unit.clone()),
        (Quantity::Position, Unit::Wgs84)
    );
    assert_eq!(truck.tag("vehicle_class"), Some("hazmat"));
    assert!(cat
        .points
        .iter()
        .all(|p| p.quantity.is_known() && p.unit.is_known()));

    let encoded = serde_json::to_vec(cat).unwrap();
    let again = decode_catalogue(&encoded, Some(&agent()), &limits).unwrap();
    assert_eq!(again.refused, Vec::<(usize, String)>::new());
    assert_eq!(&again.catalogue, cat);
    let encoded: Json = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(encoded, serde_json::to_value(&again.catalogue).unwrap());
    assert_same_meaning(&serde_json::from_str(CATALOGUE).unwrap(), &encoded, &[]);
}

#[test]
fn reading_batch_example_round_trips() {
    let limits = DecodeLimits::default();
    let batch = decode_batch(BATCH.as_bytes(), Some(&agent()), now(), &limits).unwrap();
    assert_eq!(
        batch.refused,
        vec![],
        "every reading of the example is valid"
    );
    assert_eq!(batch.agent, agent());
    assert_eq!(batch.epoch, "7f3a");
    assert_eq!(batch.seq, 42);
    let ts = t("2026-11-28T10:00:00Z");
    let r = &batch.readings;
    assert_eq!(r.len(), 4);
    assert!(r.iter().all(|r| r.ts == ts));

    assert_eq!(r[0].point.as_str(), "CH4-101");
    assert_eq!(r[0].value, Value::Number(0.42));
    assert_eq!(r[0].quality, Quality::Good);
    assert_eq!(r[0].reason, None);

    assert_eq!(r[1].point.as_str(), "IL-R3");
    assert_eq!(r[1].value, Value::Bool(true));
    assert_eq!(r[1].quality, Quality::Good, "quality defaults to good");

    assert_eq!(r[2].point.as_str(), "CH4-102");
    assert_eq!(r[2].value, Value::Null);
    assert_eq!(r[2].quality, Quality::Bad);
    assert!(!r[2].quality.judgeable());
    assert_eq!(r[2].reason.as_deref(), Some("modbus timeout"));

    assert_eq!(r[3].point.as_str(), "TRK-YA12345");
    assert_eq!(
        r[3].value,
        Value::Position(Position {
            lat: 36.0975,
            lon: 114.3928,
            speed_kmh: Some(82.5),
            heading: Some(90.0),
            alt_m: Some(75.0),
        })
    );

    let wire = Batch {
        agent: batch.agent.clone(),
        epoch: batch.epoch.clone(),
        seq: batch.seq,
        readings: r.clone(),
    };
    let encoded = encode_batch(&wire);
    let again = decode_batch(&encoded, Some(&agent()), now(), &limits).unwrap();
    assert_eq!(again, batch);
    let encoded: Json = serde_json::from_slice(&encoded).unwrap();
    let wire_again = Batch {
        agent: again.agent.clone(),
        epoch: again.epoch.clone(),
        seq: again.seq,
        readings: again.readings,
    };
    assert_eq!(encoded, serde_json::to_value(&wire_again).unwrap());
    assert_eq!(
        encoded["readings"][2]["value"],
        Json::Null,
        "a null value is written, not dropped"
    );
    assert_eq!(encoded["readings"][2]["reason"], "modbus timeout");
    assert_same_meaning(
        &serde_json::from_str(BATCH).unwrap(),
        &encoded,
        &[("quality", json!("good"))],
    );
}

#[test]
fn batch_times_with_an_offset_are_the_same_instant() {
    let payload = r#"{"agent":"mine-01-edge","seq":1,"readings":[
      {"point":"A","ts":"2026-11-28T10:00:00Z","value":1},
      {"point":"B","ts":"2026-11-28T18:00:00.000+08:00","value":1},
      {"point":"C","ts":"2026-11-28T05:30:00-04:30","value":1}]}"#;
    let batch = decode_batch(payload.as_bytes(), None, now(), &DecodeLimits::default()).unwrap();
    assert_eq!(batch.refused, vec![]);
    assert_eq!(
        batch.epoch, "",
        "epoch is optional and defaults to the empty string"
    );
    assert!(batch
        .readings
        .iter()
        .all(|r| r.ts == t("2026-11-28T10:00:00Z")));
    let encoded: Json = serde_json::from_slice(&encode_batch(&Batch {
        agent: batch.agent,
        epoch: batch.epoch,
        seq: batch.seq,
        readings: batch.readings,
    }))
    .unwrap();
    for r in encoded["readings"].as_array().unwrap() {
        assert_eq!(
            r["ts"], "2026-11-28T10:00:00.000Z",
            "the wire form is UTC with milliseconds"
        );
    }
}

#[test]
fn incident_example_round_trips() {
    let incident: Incident = serde_json::from_str(INCIDENT).unwrap();
    assert_eq!(incident.id, "01JD8X...");
    assert_eq!(incident.rule, "coal.ch4.working_face");
    assert_eq!(incident.rule_version, "3f9c1a");
    assert_eq!(incident.site, SiteId::new("mine-01").unwrap());
    assert_eq!(incident.agent, Some(agent()));
    assert_eq!(incident.point.as_ref().map(|p| p.as_str()), Some("CH4-101"));
    assert_eq!(incident.zone, None);
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.state, IncidentState::Active);
    assert_eq!(incident.value, Some(json!(1.62)));
    assert_eq!(incident.threshold, Some(1.5));
    assert_eq!(incident.raised_at, t("2026-11-28T10:00:00.000Z"));
    assert_eq!(
        (incident.acked_at, incident.cleared_at, incident.closed_at),
        (None, None, None)
    );
    assert_eq!(
        (&incident.acked_by, &incident.closed_by, &incident.note),
        (&None, &None, &None)
    );
    assert!(!incident.late);
    assert_eq!(incident.previous, None);
    assert_eq!(
        incident.message,
        "CH4 1.62 % >= power-off level 1.5 % at working face"
    );
    assert!(incident.warnings.is_empty());
    assert_eq!(
        (
            incident.shelved_until,
            &incident.assigned_to,
            incident.quality
        ),
        (None, &None, None)
    );

    let encoded = serde_json::to_string(&incident).unwrap();
    let again: Incident = serde_json::from_str(&encoded).unwrap();
    assert_eq!(again, incident);
    let encoded: Json = serde_json::from_str(&encoded).unwrap();
    assert_eq!(encoded, serde_json::to_value(&again).unwrap());
    for key in [
        "acked_at",
        "acked_by",
        "cleared_at",
        "closed_at",
        "closed_by",
        "note",
        "previous",
    ] {
        assert_eq!(
            encoded.get(key),
            Some(&Json::Null),
            "{key} is written as null, not left out"
        );
    }
    assert_same_meaning(&serde_json::from_str(INCIDENT).unwrap(), &encoded, &[]);
}

#[test]
fn incident_event_example_round_trips() {
    let original = incident_event_example();
    let event: IncidentEvent = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(event.event, EventKind::Raised);
    assert_eq!(event.event_id, "01JD8X...-1");
    assert_eq!(event.event_seq, 1);
    assert_eq!(event.at, t("2026-11-28T10:00:00Z"));
    assert_eq!((&event.by, &event.tier), (&None, &None));
    assert_eq!(
        event.incident,
        serde_json::from_str::<Incident>(INCIDENT).unwrap()
    );

    let encoded = serde_json::to_string(&event).unwrap();
    let again: IncidentEvent = serde_json::from_str(&encoded).unwrap();
    assert_eq!(again, event);
    let encoded: Json = serde_json::from_str(&encoded).unwrap();
    assert_eq!(encoded, serde_json::to_value(&again).unwrap());
    assert!(
        encoded.get("incident").is_none(),
        "the incident's fields sit at the top level of an event"
    );
    assert_same_meaning(&original, &encoded, &[]);
}

#[test]
fn later_incident_events_round_trip() {
    // A cleared, acknowledged, then closed incident whose value was a position, with every
    // optional field set: the shapes an event takes later in an incident's life.
    let original = json!({
        "event":"notified","event_id":"ev-7","event_seq":7,"at":"2026-11-28T18:20:00+08:00",
        "by":"dispatcher-2","tier":"duty_leader",
        "id":"01JD8Y","rule":"vehicle.overspeed","rule_version":"aa01","site":"fleet-1","agent":"fleet-1-gw",
        "point":null,"zone":"yard","severity":"alarm","state":"closed",
        "value":{"lat":36.0975,"lon":114.3928,"speed_kmh":102.5},"threshold":null,
        "raised_at":"2026-11-28T10:00:00Z","acked_at":"2026-11-28T10:01:00Z","acked_by":"op-1",
        "cleared_at":"2026-11-28T10:05:00Z","closed_at":"2026-11-28T10:20:00Z","closed_by":"op-1",
        "note":"driver warned","late":true,"previous":"01JD8W","message":"overspeed",
        "warnings":["cap-1#11B03"],"shelved_until":"2026-11-28T11:00:00Z","assigned_to":"op-2",
        "quality":"uncertain"
    });
    let event: IncidentEvent = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(event.event, EventKind::Notified);
    assert_eq!(event.tier.as_deref(), Some("duty_leader"));
    assert_eq!(event.at, t("2026-11-28T10:20:00Z"));
    let inc = &event.incident;
    assert_eq!(
        (inc.point.as_ref(), inc.zone.as_deref()),
        (None, Some("yard"))
    );
    assert_eq!(inc.state, IncidentState::Closed);
    assert_eq!(inc.threshold, None);
    assert_eq!(inc.shelved_until, Some(t("2026-11-28T11:00:00Z")));
    assert_eq!(inc.quality, Some(Quality::Uncertain));
    assert_eq!(inc.warnings, ["cap-1#11B03"]);

    let encoded = serde_json::to_value(&event).unwrap();
    assert_eq!(
        serde_json::from_value::<IncidentEvent>(encoded.clone()).unwrap(),
        event
    );
    assert_same_meaning(&original, &encoded, &[]);
}

#[test]
fn contract_event_and_state_words_parse() {
    for word in [
        "raised",
        "escalated",
        "deescalated",
        "acknowledged",
        "cleared",
        "closed",
        "shelved",
        "unshelved",
        "commented",
        "assigned",
        "notified",
    ] {
        assert_eq!(EventKind::parse(word).map(EventKind::as_str), Some(word));
    }
    for word in ["active", "acknowledged", "cleared", "closed"] {
        assert_eq!(
            IncidentState::parse(word).map(IncidentState::as_str),
            Some(word)
        );
    }
    let severities: Vec<Severity> = ["info", "warning", "alarm", "critical"]
        .iter()
        .map(|s| Severity::parse(s).unwrap())
        .collect();
    assert!(
        severities.windows(2).all(|w| w[0] < w[1]),
        "info < warning < alarm < critical"
    );
}

#[test]
fn contract_topics_parse() {
    let scheme = TopicScheme::default();
    let site = SiteId::new("mine-01").unwrap();
    let cases = [
        (
            "hrs/v1/sites/mine-01/mine-01-edge/birth",
            Topic::Birth {
                site: site.clone(),
                agent: agent(),
            },
        ),
        (
            "hrs/v1/sites/mine-01/mine-01-edge/readings",
            Topic::Readings {
                site: site.clone(),
                agent: agent(),
            },
        ),
        (
            "hrs/v1/sites/mine-01/mine-01-edge/status",
            Topic::Status {
                site: site.clone(),
                agent: agent(),
            },
        ),
        ("hrs/v1/weather/cap", Topic::WeatherCap),
        ("hrs/v1/weather/cenc", Topic::WeatherCenc),
        (
            "hrs/v1/incidents/mine-01",
            Topic::Incidents { site: site.clone() },
        ),
    ];
    for (text, topic) in &cases {
        assert_eq!(scheme.parse(text).as_ref(), Ok(topic), "{text}");
    }
    assert_eq!(scheme.birth(&site, &agent()), cases[0].0);
    assert_eq!(scheme.readings(&site, &agent()), cases[1].0);
    assert_eq!(scheme.status(&site, &agent()), cases[2].0);
    assert_eq!(scheme.weather_cap(), cases[3].0);
    assert_eq!(scheme.weather_cenc(), cases[4].0);
    assert_eq!(scheme.incidents(&site), cases[5].0);
}

/// Contract 1.1: a point's own alarm settings (`limits`) and the site attribute of the
/// emission-reduction list (issue 25).
#[test]
fn limits_and_the_emission_reduction_list_are_read() {
    let text = r#"{"agent":"mine-01-edge","site":{"category":"hazchem","emission_reduction_list":true},
     "points":[{"point":"TT-R3","quantity":"temperature","unit":"°C","limits":{"hh":90,"h":80.5}},
               {"point":"TT-R4","quantity":"temperature","unit":"°C","limits":{"hh":90,"hhh":99}}]}"#;
    let d = decode_catalogue(text.as_bytes(), Some(&agent()), &DecodeLimits::default()).unwrap();
    assert!(d.catalogue.site.as_ref().unwrap().emission_reduction_list);
    assert_eq!(
        d.catalogue.points.len(),
        1,
        "an unknown limit key refuses its point"
    );
    assert_eq!(d.refused.len(), 1);
    let limits = d.catalogue.points[0].limits.as_ref().unwrap();
    assert_eq!(limits.get(telemetry::LimitKey::Hh), Some(90.0));
    assert_eq!(limits.get(telemetry::LimitKey::H), Some(80.5));
    assert_eq!(limits.get(telemetry::LimitKey::Ll), None);
    let again = serde_json::to_value(&d.catalogue.points[0]).unwrap();
    assert_eq!(again["limits"], json!({"hh": 90.0, "h": 80.5}));
    let site = serde_json::to_value(d.catalogue.site.as_ref().unwrap()).unwrap();
    assert_eq!(site["emission_reduction_list"], json!(true));
}
