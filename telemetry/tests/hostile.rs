//! Hostile payloads: each is refused with the exact error the contract's reader needs (the
//! variant, its stable `code()` and, where it helps an integrator, the message text), and a
//! bad reading never takes the good readings of its batch down with it.

use serde_json::{json, Value as Json};
use telemetry::{
    decode_batch, decode_catalogue, decode_status, parse_time, AgentId, BatchError, DecodeLimits,
    DecodedBatch, IdError, Incident, PointId, Position, Quality, ReadingError, RefusedReading,
    SiteId, TimeError, Timestamp, Topic, TopicError, TopicScheme, Unit, Value,
};

/// The injected gateway clock.
fn now() -> Timestamp {
    parse_time("2026-11-28T10:00:00Z").unwrap()
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn good_reading() -> Json {
    json!({"point":"CH4-101","ts":"2026-11-28T09:59:59.000Z","value":0.42,"quality":"good"})
}

fn envelope(readings: Json) -> Json {
    json!({"agent":"mine-01-edge","epoch":"7f3a","seq":42,"readings":readings})
}

fn decode(payload: &Json) -> Result<DecodedBatch, BatchError> {
    decode_batch(payload.to_string().as_bytes(), None, now(), &limits())
}

/// The envelope is refused whole with this error.
fn batch_error(payload: &Json) -> BatchError {
    decode(payload).expect_err("the payload must be refused whole")
}

fn batch_error_bytes(payload: &[u8], limits: &DecodeLimits) -> BatchError {
    decode_batch(payload, None, now(), limits).expect_err("the payload must be refused whole")
}

/// A batch of the one reading: it is refused alone, at index 0.
fn refused(reading: Json) -> RefusedReading {
    let batch = decode(&envelope(json!([reading]))).expect("the envelope is sound");
    assert_eq!(batch.readings, vec![], "the reading must not be taken");
    assert_eq!(batch.refused.len(), 1);
    let r = batch.refused.into_iter().next().unwrap();
    assert_eq!(r.index, 0);
    r
}

fn reading_error(reading: Json) -> ReadingError {
    refused(reading).error
}

/// `good_reading()` with `field` set to `value` (or removed, for `None`).
fn with(field: &str, value: Option<Json>) -> Json {
    let mut r = good_reading();
    let obj = r.as_object_mut().unwrap();
    match value {
        Some(v) => obj.insert(field.to_string(), v),
        None => obj.remove(field),
    };
    r
}

fn wrong_type(field: &'static str, expected: &'static str) -> BatchError {
    BatchError::WrongType { field, expected }
}

fn reading_wrong_type(field: &'static str, expected: &'static str) -> ReadingError {
    ReadingError::WrongType { field, expected }
}

// ---------------------------------------------------------------- envelope: wrong types

#[test]
fn envelope_field_of_the_wrong_type_is_refused_whole() {
    let cases: Vec<(&str, Json, BatchError)> = vec![
        ("agent", json!(7), wrong_type("agent", "a string")),
        ("agent", json!(null), wrong_type("agent", "a string")),
        ("agent", json!(true), wrong_type("agent", "a string")),
        (
            "agent",
            json!(["mine-01-edge"]),
            wrong_type("agent", "a string"),
        ),
        (
            "agent",
            json!({"id":"mine-01-edge"}),
            wrong_type("agent", "a string"),
        ),
        (
            "seq",
            json!("42"),
            wrong_type("seq", "a non-negative integer"),
        ),
        (
            "seq",
            json!(null),
            wrong_type("seq", "a non-negative integer"),
        ),
        (
            "seq",
            json!(true),
            wrong_type("seq", "a non-negative integer"),
        ),
        (
            "seq",
            json!([42]),
            wrong_type("seq", "a non-negative integer"),
        ),
        ("epoch", json!(7), wrong_type("epoch", "a string")),
        ("epoch", json!(false), wrong_type("epoch", "a string")),
        ("epoch", json!(["7f3a"]), wrong_type("epoch", "a string")),
        ("epoch", json!({}), wrong_type("epoch", "a string")),
        ("readings", json!({}), wrong_type("readings", "an array")),
        ("readings", json!("[]"), wrong_type("readings", "an array")),
        ("readings", json!(null), wrong_type("readings", "an array")),
        ("readings", json!(3), wrong_type("readings", "an array")),
    ];
    for (field, value, expected) in cases {
        let mut payload = envelope(json!([good_reading()]));
        payload[field] = value.clone();
        let err = batch_error(&payload);
        assert_eq!(err, expected, "{field} = {value}");
        assert_eq!(err.code(), "wrong_type");
        assert_eq!(
            err.to_string(),
            format!("field `{field}` must be {}", expected_text(&expected))
        );
    }
}

fn expected_text(e: &BatchError) -> &'static str {
    match e {
        BatchError::WrongType { expected, .. } => expected,
        _ => unreachable!(),
    }
}

#[test]
fn negative_float_and_oversized_seq_are_refused() {
    for seq in ["-1", "1.5", "42.0", "1e3", "-0.5", "18446744073709551616"] {
        let text = format!(r#"{{"agent":"mine-01-edge","seq":{seq},"readings":[]}}"#);
        assert_eq!(
            batch_error_bytes(text.as_bytes(), &limits()),
            wrong_type("seq", "a non-negative integer"),
            "seq {seq}"
        );
    }
    for (seq, expected) in [("0", 0u64), ("18446744073709551615", u64::MAX)] {
        let text = format!(r#"{{"agent":"mine-01-edge","seq":{seq},"readings":[]}}"#);
        assert_eq!(
            decode_batch(text.as_bytes(), None, now(), &limits())
                .unwrap()
                .seq,
            expected
        );
    }
}

#[test]
fn epoch_is_optional_null_is_empty_and_long_is_invalid() {
    let mut payload = envelope(json!([]));
    payload.as_object_mut().unwrap().remove("epoch");
    assert_eq!(decode(&payload).unwrap().epoch, "");
    payload["epoch"] = Json::Null;
    assert_eq!(decode(&payload).unwrap().epoch, "");
    payload["epoch"] = json!("e".repeat(64));
    assert_eq!(decode(&payload).unwrap().epoch, "e".repeat(64));
    payload["epoch"] = json!("e".repeat(65));
    let err = batch_error(&payload);
    assert_eq!(
        err,
        BatchError::Invalid {
            field: "epoch",
            reason: "longer than 64 bytes".into()
        }
    );
    assert_eq!(err.code(), "invalid");
}

#[test]
fn missing_envelope_fields_are_named() {
    for field in ["agent", "seq", "readings"] {
        let mut payload = envelope(json!([good_reading()]));
        payload.as_object_mut().unwrap().remove(field);
        let err = batch_error(&payload);
        assert_eq!(
            err,
            BatchError::MissingField(match field {
                "agent" => "agent",
                "seq" => "seq",
                _ => "readings",
            })
        );
        assert_eq!(err.code(), "missing_field");
        assert_eq!(err.to_string(), format!("field `{field}` is missing"));
    }
}

// ---------------------------------------------------------------- readings: wrong types

#[test]
fn reading_field_of_the_wrong_type_is_refused_alone() {
    let cases: Vec<(&str, Json, ReadingError)> = vec![
        ("point", json!(101), reading_wrong_type("point", "a string")),
        (
            "point",
            json!(null),
            reading_wrong_type("point", "a string"),
        ),
        (
            "point",
            json!(true),
            reading_wrong_type("point", "a string"),
        ),
        (
            "point",
            json!(["CH4-101"]),
            reading_wrong_type("point", "a string"),
        ),
        (
            "point",
            json!({"id":"CH4-101"}),
            reading_wrong_type("point", "a string"),
        ),
        (
            "ts",
            json!(1_764_324_000),
            reading_wrong_type("ts", "an RFC 3339 string"),
        ),
        (
            "ts",
            json!(1_764_324_000_000u64),
            reading_wrong_type("ts", "an RFC 3339 string"),
        ),
        (
            "ts",
            json!(null),
            reading_wrong_type("ts", "an RFC 3339 string"),
        ),
        (
            "ts",
            json!(["2026-11-28T10:00:00Z"]),
            reading_wrong_type("ts", "an RFC 3339 string"),
        ),
        (
            "quality",
            json!(0),
            reading_wrong_type("quality", "a string"),
        ),
        (
            "quality",
            json!(true),
            reading_wrong_type("quality", "a string"),
        ),
        (
            "quality",
            json!(["good"]),
            reading_wrong_type("quality", "a string"),
        ),
        ("reason", json!(7), reading_wrong_type("reason", "a string")),
        (
            "reason",
            json!(false),
            reading_wrong_type("reason", "a string"),
        ),
        (
            "reason",
            json!({"text":"timeout"}),
            reading_wrong_type("reason", "a string"),
        ),
        ("value", json!("0.42"), ReadingError::BadValue),
        ("value", json!("true"), ReadingError::BadValue),
        ("value", json!([0.42]), ReadingError::BadValue),
        ("value", json!([]), ReadingError::BadValue),
    ];
    for (field, value, expected) in cases {
        let r = refused(with(field, Some(value.clone())));
        assert_eq!(r.error, expected, "{field} = {value}");
        let code = if field == "value" {
            "bad_value"
        } else {
            "wrong_type"
        };
        assert_eq!(r.error.code(), code, "{field} = {value}");
        let point = if field == "point" {
            None
        } else {
            Some("CH4-101".to_string())
        };
        assert_eq!(
            r.point, point,
            "the refusal names the point when there is one"
        );
    }
    assert_eq!(
        ReadingError::BadValue.to_string(),
        "value must be a number, a bool, a position object or null"
    );
}

#[test]
fn quality_outside_the_four_words_is_refused() {
    for q in ["GOOD", "Good", "ok", "", "bad ", "questionable"] {
        let err = reading_error(with("quality", Some(json!(q))));
        assert_eq!(
            err,
            ReadingError::BadQuality(q.to_string()),
            "quality {q:?}"
        );
        assert_eq!(err.code(), "bad_quality");
    }
    for (q, expected) in [
        (Some(json!("good")), Quality::Good),
        (Some(json!("uncertain")), Quality::Uncertain),
        (Some(json!("calibration")), Quality::Calibration),
        (Some(Json::Null), Quality::Good),
        (None, Quality::Good),
    ] {
        let batch = decode(&envelope(json!([with("quality", q)]))).unwrap();
        assert_eq!(batch.refused, vec![]);
        assert_eq!(batch.readings[0].quality, expected);
    }
}

#[test]
fn missing_reading_fields_are_named() {
    for (field, name) in [("point", "point"), ("ts", "ts"), ("value", "value")] {
        let r = refused(with(field, None));
        assert_eq!(r.error, ReadingError::MissingField(name));
        assert_eq!(r.error.code(), "missing_field");
        assert_eq!(r.error.to_string(), format!("field `{field}` is missing"));
    }
}

#[test]
fn reading_that_is_not_an_object_is_refused_alone() {
    for item in [
        json!(42),
        json!("CH4-101"),
        json!([good_reading()]),
        json!(null),
        json!(true),
    ] {
        let r = refused(item.clone());
        assert_eq!(r.error, ReadingError::NotAnObject, "{item}");
        assert_eq!(r.error.code(), "not_an_object");
        assert_eq!(r.point, None);
        assert_eq!(
            r.raw,
            item.to_string(),
            "the raw reading is kept for the dead letter"
        );
    }
}

#[test]
fn unknown_reading_field_is_refused() {
    for field in ["unit", "Value", "timestamp", ""] {
        let r = refused(with(field, Some(json!("%"))));
        assert_eq!(r.error, ReadingError::UnknownField(field.to_string()));
        assert_eq!(r.error.code(), "unknown_field");
        assert_eq!(r.error.to_string(), format!("unknown field `{field}`"));
    }
}

// ---------------------------------------------------------------- identifiers

#[test]
fn agent_ids_follow_the_contract_charset_and_length() {
    let ok = [
        "a",
        "0",
        "mine-01-edge",
        "a_b-c",
        &"a".repeat(64),
        &format!("9{}", "-".repeat(63)),
    ];
    for id in ok {
        assert!(AgentId::new(id).is_ok(), "{id:?} is a valid agent id");
        let mut payload = envelope(json!([]));
        payload["agent"] = json!(id);
        assert_eq!(decode(&payload).unwrap().agent.as_str(), id);
    }
    let bad_char = [
        "Mine-01", "-mine", "_mine", "mine 01", "mine/01", "mine+", "mine#", "mine.01", "mine:1",
        "矿",
    ];
    for id in bad_char {
        let mut payload = envelope(json!([]));
        payload["agent"] = json!(id);
        let err = batch_error(&payload);
        assert!(
            matches!(
                &err,
                BatchError::BadAgent(IdError::BadChar { kind: "agent", .. })
            ),
            "{id:?}: {err:?}"
        );
        assert_eq!(err.code(), "bad_id");
        assert!(
            err.to_string().starts_with("field `agent`: agent id"),
            "{err}"
        );
    }
    let mut payload = envelope(json!([]));
    payload["agent"] = json!("");
    assert_eq!(
        batch_error(&payload),
        BatchError::BadAgent(IdError::Empty { kind: "agent" })
    );
    payload["agent"] = json!("a".repeat(65));
    let err = batch_error(&payload);
    assert!(
        matches!(
            err,
            BatchError::BadAgent(IdError::TooLong { kind: "agent", .. })
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "bad_id");
}

#[test]
fn point_ids_follow_the_contract_charset_and_length() {
    let long_ok = format!("P{}", "9".repeat(63));
    let ok = [
        "CH4-101",
        "a",
        "0",
        "plc1:40001.3",
        "A_b-c.d:e",
        long_ok.as_str(),
    ];
    for id in ok {
        let batch = decode(&envelope(json!([with("point", Some(json!(id)))]))).unwrap();
        assert_eq!(batch.refused, vec![], "{id:?} is a valid point id");
        assert_eq!(batch.readings[0].point.as_str(), id);
    }
    for id in [
        ".x", "-x", "_x", ":x", "CH4 101", "CH4/101", "CH4#", "CH4+", "CH4\u{0}", "甲烷", "CH4-10é",
    ] {
        let r = refused(with("point", Some(json!(id))));
        assert!(
            matches!(
                &r.error,
                ReadingError::BadPoint(IdError::BadChar { kind: "point", .. })
            ),
            "{id:?}: {r:?}"
        );
        assert_eq!(r.error.code(), "bad_id");
        assert_eq!(
            r.point.as_deref(),
            Some(id),
            "the refusal names the point as it came"
        );
    }
    let r = refused(with("point", Some(json!(""))));
    assert_eq!(
        r.error,
        ReadingError::BadPoint(IdError::Empty { kind: "point" })
    );
    let too_long = format!("P{}", "9".repeat(64));
    let r = refused(with("point", Some(json!(too_long))));
    assert!(
        matches!(
            &r.error,
            ReadingError::BadPoint(IdError::TooLong { kind: "point", .. })
        ),
        "{r:?}"
    );
    assert_eq!(r.error.code(), "bad_id");
    assert!(
        r.point.as_deref().unwrap().starts_with(&too_long[..64]),
        "a long point id is cut, not dropped"
    );
}

#[test]
fn non_ascii_id_is_a_bad_character_whatever_its_byte_length() {
    // 30 characters but 90 bytes: the complaint must be the charset, not a length the id
    // does not have.
    let id = "甲".repeat(30);
    assert!(matches!(
        PointId::new(id.as_str()),
        Err(IdError::BadChar { .. })
    ));
    assert!(matches!(
        AgentId::new("é".repeat(40)),
        Err(IdError::BadChar { .. })
    ));
    assert!(matches!(
        SiteId::new("é".repeat(40)),
        Err(IdError::BadChar { .. })
    ));
}

#[test]
fn site_ids_follow_the_contract_charset_and_length() {
    assert!(SiteId::new("a".repeat(64)).is_ok());
    assert!(matches!(
        SiteId::new("a".repeat(65)),
        Err(IdError::TooLong { kind: "site", .. })
    ));
    assert_eq!(SiteId::new(""), Err(IdError::Empty { kind: "site" }));
    for id in [
        "Mine-01", "-mine", "mine.01", "mine 01", "mine/01", "+", "#",
    ] {
        assert!(
            matches!(SiteId::new(id), Err(IdError::BadChar { kind: "site", .. })),
            "{id:?}"
        );
    }

    // Where a site id comes from outside: the topic and the incident.
    let scheme = TopicScheme::default();
    let site64 = "s".repeat(64);
    assert_eq!(
        scheme.parse(&format!("hrs/v1/sites/{site64}/a1/readings")),
        Ok(Topic::Readings {
            site: SiteId::new(site64.as_str()).unwrap(),
            agent: AgentId::new("a1").unwrap()
        })
    );
    for topic in [
        format!("hrs/v1/sites/{}/a1/readings", "s".repeat(65)),
        "hrs/v1/sites/Mine-01/a1/readings".to_string(),
        "hrs/v1/sites/mine-01/A1/birth".to_string(),
        "hrs/v1/sites//a1/status".to_string(),
        "hrs/v1/incidents/mine.01".to_string(),
    ] {
        assert!(
            matches!(scheme.parse(&topic), Err(TopicError::BadId { .. })),
            "{topic}"
        );
    }

    let mut incident: Json = serde_json::from_str(INCIDENT).unwrap();
    assert!(serde_json::from_value::<Incident>(incident.clone()).is_ok());
    incident["site"] = json!("Mine-01");
    let err = serde_json::from_value::<Incident>(incident).unwrap_err();
    assert!(
        err.to_string()
            .contains("site id \"Mine-01\" has a character outside"),
        "{err}"
    );
}

const INCIDENT: &str = r#"{"id":"01JD8X","rule":"coal.ch4.working_face","rule_version":"3f9c1a","site":"mine-01","agent":"mine-01-edge",
 "point":"CH4-101","severity":"critical","state":"active","value":1.62,"threshold":1.5,
 "raised_at":"2026-11-28T10:00:00Z","acked_at":null,"acked_by":null,"cleared_at":null,
 "closed_at":null,"closed_by":null,"note":null,"late":false,"previous":null,
 "message":"CH4 1.62 % >= power-off level 1.5 % at working face","warnings":[]}"#;

// ---------------------------------------------------------------- times

#[test]
fn time_without_a_zone_is_refused() {
    for ts in [
        "2026-11-28T10:00:00",
        "2026-11-28T10:00:00.000",
        "2026-11-28T10:00:00.123456789",
    ] {
        let err = reading_error(with("ts", Some(json!(ts))));
        assert_eq!(
            err,
            ReadingError::BadTime(TimeError::NoZone(ts.to_string())),
            "{ts}"
        );
        assert_eq!(err.code(), "time_without_zone");
        assert!(err.to_string().contains("has no zone"), "{err}");
    }
}

#[test]
fn malformed_time_is_refused() {
    for ts in [
        "",
        "yesterday",
        "2026-11-28",
        "10:00:00Z",
        "2026-13-28T10:00:00Z",
        "2026-11-31T10:00:00Z",
        "2026-11-28T25:00:00Z",
        "2026-11-28T10:61:00Z",
        "2026-11-28T10:00:00+8",
        "2026-11-28T10:00:00+08:00:00",
        "2026-11-28T10:00:00ZZ",
        "2026-11-28T10:00:00 UTC",
        "1764324000",
        "28/11/2026 10:00:00",
    ] {
        let err = reading_error(with("ts", Some(json!(ts))));
        assert_eq!(
            err,
            ReadingError::BadTime(TimeError::Malformed(ts.to_string())),
            "{ts:?}"
        );
        assert_eq!(err.code(), "bad_time");
        assert!(err.to_string().contains("is not RFC 3339"), "{err}");
    }
}

#[test]
fn future_time_is_refused_beyond_five_minutes_of_the_injected_clock() {
    let accepted = [
        "2026-11-28T10:05:00.000Z",
        "2026-11-28T18:05:00+08:00",
        "2026-11-28T10:04:59.999Z",
        "2020-01-01T00:00:00Z",
    ];
    for ts in accepted {
        let batch = decode(&envelope(json!([with("ts", Some(json!(ts)))]))).unwrap();
        assert_eq!(
            batch.refused,
            vec![],
            "{ts} is at most 5 min ahead and is taken"
        );
        assert_eq!(batch.readings[0].ts, parse_time(ts).unwrap());
    }
    for ts in [
        "2026-11-28T10:05:00.001Z",
        "2026-11-28T18:05:01+08:00",
        "2099-01-01T00:00:00Z",
    ] {
        let err = reading_error(with("ts", Some(json!(ts))));
        let expected = ReadingError::Future {
            ts: telemetry::format_time(&parse_time(ts).unwrap()),
            now: "2026-11-28T10:00:00.000Z".into(),
            limit_s: 300,
        };
        assert_eq!(err, expected, "{ts}");
        assert_eq!(err.code(), "future");
        assert!(err.to_string().contains("more than 300 s ahead"), "{err}");
    }
    // The clock is the injected one, not the machine's: the same reading is taken later on.
    let later = now() + chrono::Duration::hours(1);
    let payload = envelope(json!([with("ts", Some(json!("2026-11-28T10:30:00Z")))])).to_string();
    assert_eq!(
        decode_batch(payload.as_bytes(), None, now(), &limits())
            .unwrap()
            .readings
            .len(),
        0
    );
    assert_eq!(
        decode_batch(payload.as_bytes(), None, later, &limits())
            .unwrap()
            .readings
            .len(),
        1
    );
}

#[test]
fn future_limit_comes_from_the_limits() {
    let limits = DecodeLimits {
        max_future: chrono::Duration::seconds(0),
        ..DecodeLimits::default()
    };
    let payload = envelope(json!([
        with("ts", Some(json!("2026-11-28T10:00:00Z"))),
        with("ts", Some(json!("2026-11-28T10:00:00.001Z")))
    ]));
    let batch = decode_batch(payload.to_string().as_bytes(), None, now(), &limits).unwrap();
    assert_eq!(batch.readings.len(), 1);
    assert_eq!(batch.refused[0].index, 1);
    assert!(matches!(
        batch.refused[0].error,
        ReadingError::Future { limit_s: 0, .. }
    ));
}

// ---------------------------------------------------------------- values and quality

#[test]
fn null_value_is_refused_unless_quality_is_bad() {
    for (quality, name) in [
        (Some(json!("good")), "good"),
        (Some(json!("uncertain")), "uncertain"),
        (Some(json!("calibration")), "calibration"),
        (None, "good"),
        (Some(Json::Null), "good"),
    ] {
        let mut r = with("value", Some(Json::Null));
        match quality {
            Some(q) => r["quality"] = q,
            None => {
                r.as_object_mut().unwrap().remove("quality");
            }
        }
        let err = reading_error(r);
        assert_eq!(err, ReadingError::NullWithoutBad(name));
        assert_eq!(err.code(), "null_without_bad");
        assert_eq!(
            err.to_string(),
            format!("value is null but quality is {name} (null is only allowed with quality bad)")
        );
    }
    let mut r = with("value", Some(Json::Null));
    r["quality"] = json!("bad");
    let batch = decode(&envelope(json!([r]))).unwrap();
    assert_eq!(batch.refused, vec![]);
    assert_eq!(batch.readings[0].value, Value::Null);
    assert_eq!(
        batch.readings[0].reason, None,
        "reason is optional even for bad"
    );
}

#[test]
fn long_reason_is_cut_not_refused() {
    let limits = limits();
    let mut r = with("value", Some(Json::Null));
    r["quality"] = json!("bad");
    r["reason"] = json!("超时".repeat(1000));
    let batch = decode(&envelope(json!([r]))).unwrap();
    let reason = batch.readings[0].reason.as_deref().unwrap();
    assert_eq!(reason.chars().count(), limits.max_reason_chars);
    assert!("超时".repeat(1000).starts_with(reason));
}

#[test]
fn position_out_of_range_or_malformed_is_refused() {
    let cases: Vec<(Json, &str)> = vec![
        (
            json!({"lat":90.0001,"lon":0}),
            "lat 90.0001 is outside -90..90",
        ),
        (json!({"lat":-91,"lon":0}), "lat -91 is outside -90..90"),
        (
            json!({"lat":0,"lon":180.5}),
            "lon 180.5 is outside -180..180",
        ),
        (json!({"lat":0,"lon":-181}), "lon -181 is outside -180..180"),
        (
            json!({"lat":0,"lon":0,"speed_kmh":-1}),
            "speed_kmh is negative",
        ),
        (json!({"lon":114.3}), "`lat` is missing"),
        (json!({"lat":36.1}), "`lon` is missing"),
        (json!({"lat":null,"lon":114.3}), "`lat` is missing"),
        (json!({"lat":"36.1","lon":114.3}), "`lat` must be a number"),
        (
            json!({"lat":36.1,"lon":114.3,"heading":"east"}),
            "`heading` must be a number",
        ),
        (
            json!({"lat":36.1,"lon":114.3,"altitude":75}),
            "unknown field `altitude`",
        ),
        (json!({}), "`lat` is missing"),
    ];
    for (value, message) in cases {
        let err = reading_error(with("value", Some(value.clone())));
        assert_eq!(
            err,
            ReadingError::BadPosition(message.to_string()),
            "{value}"
        );
        assert_eq!(err.code(), "bad_position");
        assert_eq!(err.to_string(), format!("position: {message}"));
    }
    for (value, expected) in [
        (
            json!({"lat":90,"lon":-180}),
            Position {
                lat: 90.0,
                lon: -180.0,
                speed_kmh: None,
                heading: None,
                alt_m: None,
            },
        ),
        (
            json!({"lat":-90,"lon":180,"speed_kmh":0,"heading":359.9,"alt_m":-12}),
            Position {
                lat: -90.0,
                lon: 180.0,
                speed_kmh: Some(0.0),
                heading: Some(359.9),
                alt_m: Some(-12.0),
            },
        ),
    ] {
        let batch = decode(&envelope(json!([with("value", Some(value))]))).unwrap();
        assert_eq!(batch.readings[0].value, Value::Position(expected));
    }
}

// ---------------------------------------------------------------- limits

#[test]
fn more_items_than_the_limit_are_refused_whole() {
    let small = DecodeLimits {
        max_items: 10,
        ..DecodeLimits::default()
    };
    let at_limit = envelope(json!(vec![good_reading(); 10])).to_string();
    assert_eq!(
        decode_batch(at_limit.as_bytes(), None, now(), &small)
            .unwrap()
            .readings
            .len(),
        10
    );
    let over = envelope(json!(vec![good_reading(); 11])).to_string();
    let err = batch_error_bytes(over.as_bytes(), &small);
    assert_eq!(
        err,
        BatchError::TooMany {
            count: 11,
            limit: 10
        }
    );
    assert_eq!(err.code(), "too_many");
    assert_eq!(err.to_string(), "11 items exceed the limit of 10");

    // The default limit, with items too small to hit the byte limit first.
    let default = DecodeLimits::default();
    let many = format!(
        r#"{{"agent":"a1","seq":1,"readings":[{}]}}"#,
        vec!["0"; default.max_items + 1].join(",")
    );
    assert_eq!(
        batch_error_bytes(many.as_bytes(), &default),
        BatchError::TooMany {
            count: default.max_items + 1,
            limit: default.max_items
        }
    );

    let points = format!(r#"{{"agent":"a1","points":[{}]}}"#, ["{}"; 11].join(","));
    assert_eq!(
        decode_catalogue(points.as_bytes(), None, &small).unwrap_err(),
        BatchError::TooMany {
            count: 11,
            limit: 10
        }
    );
}

#[test]
fn payload_over_max_bytes_is_refused_before_it_is_read() {
    let small = DecodeLimits {
        max_bytes: 200,
        ..DecodeLimits::default()
    };
    let body = envelope(json!([])).to_string();
    let at_limit = format!("{body}{}", " ".repeat(200 - body.len()));
    assert_eq!(at_limit.len(), 200);
    assert!(
        decode_batch(at_limit.as_bytes(), None, now(), &small).is_ok(),
        "exactly max_bytes is taken"
    );
    let over = format!("{at_limit} ");
    let err = batch_error_bytes(over.as_bytes(), &small);
    assert_eq!(
        err,
        BatchError::TooLarge {
            bytes: 201,
            limit: 200
        }
    );
    assert_eq!(err.code(), "too_large");
    assert_eq!(
        err.to_string(),
        "payload of 201 bytes exceeds the limit of 200 bytes"
    );

    // Size is judged before encoding or syntax: an oversized heap of garbage is too_large.
    let garbage = vec![0xffu8; 201];
    assert_eq!(
        batch_error_bytes(&garbage, &small),
        BatchError::TooLarge {
            bytes: 201,
            limit: 200
        }
    );
    assert_eq!(
        decode_catalogue(&garbage, None, &small).unwrap_err(),
        BatchError::TooLarge {
            bytes: 201,
            limit: 200
        }
    );
    assert_eq!(
        decode_status(&garbage, None, &small).unwrap_err(),
        BatchError::TooLarge {
            bytes: 201,
            limit: 200
        }
    );

    let default = DecodeLimits::default();
    let huge = vec![b' '; default.max_bytes + 1];
    assert_eq!(
        batch_error_bytes(&huge, &default),
        BatchError::TooLarge {
            bytes: default.max_bytes + 1,
            limit: default.max_bytes
        }
    );
}

fn nested(depth: usize) -> String {
    // The envelope, the readings array and the reading are 3 levels; the value adds the rest.
    let inner = depth - 3;
    format!(
        r#"{{"agent":"a1","seq":1,"readings":[{{"point":"P","ts":"2026-11-28T10:00:00Z","value":{}{}}}]}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    )
}

#[test]
fn deep_nesting_is_refused() {
    let limits = limits();
    let at_limit = nested(limits.max_depth);
    let batch = decode_batch(at_limit.as_bytes(), None, now(), &limits)
        .expect("max_depth levels are allowed");
    assert_eq!(
        batch.refused[0].error,
        ReadingError::BadValue,
        "the nested array is no value"
    );

    let err = batch_error_bytes(nested(limits.max_depth + 1).as_bytes(), &limits);
    assert_eq!(
        err,
        BatchError::TooDeep {
            limit: limits.max_depth
        }
    );
    assert_eq!(err.code(), "too_deep");
    assert_eq!(
        err.to_string(),
        format!("payload nests deeper than {} levels", limits.max_depth)
    );

    // Far deeper than any recursive parser's stack: refused by the linear scan, no overflow.
    let bomb = "[".repeat(1_000_000);
    assert_eq!(
        batch_error_bytes(bomb.as_bytes(), &limits),
        BatchError::TooDeep { limit: 16 }
    );
    assert_eq!(
        decode_catalogue(bomb.as_bytes(), None, &limits).unwrap_err(),
        BatchError::TooDeep { limit: 16 }
    );
    assert_eq!(
        decode_status(bomb.as_bytes(), None, &limits).unwrap_err(),
        BatchError::TooDeep { limit: 16 }
    );

    // Brackets inside strings are text, not nesting.
    let mut r = with("value", Some(Json::Null));
    r["quality"] = json!("bad");
    r["reason"] = json!("[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{ \"[[[[[[[[[[[[[[[[[[[");
    assert_eq!(decode(&envelope(json!([r]))).unwrap().refused, vec![]);
}

#[test]
fn invalid_utf8_is_refused_with_its_offset() {
    let valid = br#"{"agent":"mine-01-edge","seq":1,"readings":[]}"#;
    let cases: Vec<(Vec<u8>, usize)> = vec![
        ([&valid[..10], b"\xff", &valid[10..]].concat(), 10),
        ([&valid[..], b"\xc3"].concat(), valid.len()), // a cut two-byte sequence at the end
        (b"\xef\xbf".to_vec(), 0),
        (
            [
                &br#"{"agent":"a1","x":""#[..],
                "甲烷".as_bytes(),
                b"\xed\xa0\x80\"}",
            ]
            .concat(),
            25,
        ), // a surrogate
        ([&b"{\"agent\":\""[..], b"\xc0\xaf\"}"].concat(), 10), // an overlong '/'
    ];
    for (payload, offset) in cases {
        let err = batch_error_bytes(&payload, &limits());
        assert_eq!(err, BatchError::NotUtf8 { offset }, "{payload:?}");
        assert_eq!(err.code(), "not_utf8");
        assert_eq!(
            err.to_string(),
            format!("payload is not valid UTF-8 (first bad byte at offset {offset})")
        );
        assert_eq!(
            decode_catalogue(&payload, None, &limits()).unwrap_err(),
            BatchError::NotUtf8 { offset }
        );
        assert_eq!(
            decode_status(&payload, None, &limits()).unwrap_err(),
            BatchError::NotUtf8 { offset }
        );
    }
}

#[test]
fn trailing_garbage_and_broken_json_are_syntax_errors() {
    let body = envelope(json!([good_reading()])).to_string();
    for payload in [
        format!("{body}x"),
        format!("{body}{body}"),
        format!("{body},"),
        format!("{body}]"),
        body[..body.len() - 1].to_string(),
        String::new(),
        "   ".to_string(),
        r#"{"agent":"a1","seq":1,"readings":[],}"#.to_string(),
        r#"{'agent':'a1'}"#.to_string(),
        r#"{"agent":"a1","seq":NaN,"readings":[]}"#.to_string(),
        r#"{"agent":"a1","seq":1,"readings":[{"point":"P","ts":"2026-11-28T10:00:00Z","value":1e999}]}"#.to_string(),
    ] {
        let err = batch_error_bytes(payload.as_bytes(), &limits());
        assert!(matches!(err, BatchError::Syntax(_)), "{payload:?}: {err:?}");
        assert_eq!(err.code(), "not_json");
        assert!(err.to_string().starts_with("payload is not JSON: "), "{err}");
    }
    let ok = format!(" \n\t{body} \r\n");
    assert!(
        decode_batch(ok.as_bytes(), None, now(), &limits()).is_ok(),
        "surrounding whitespace is fine"
    );
}

#[test]
fn payload_that_is_not_an_object_is_refused_whole() {
    for payload in [
        "[]",
        "[{\"agent\":\"a1\"}]",
        "42",
        "\"batch\"",
        "null",
        "true",
    ] {
        let err = batch_error_bytes(payload.as_bytes(), &limits());
        assert_eq!(err, BatchError::NotAnObject, "{payload}");
        assert_eq!(err.code(), "not_an_object");
        assert_eq!(
            decode_catalogue(payload.as_bytes(), None, &limits()).unwrap_err(),
            BatchError::NotAnObject
        );
        assert_eq!(
            decode_status(payload.as_bytes(), None, &limits()).unwrap_err(),
            BatchError::NotAnObject
        );
    }
}

#[test]
fn agent_must_match_the_topic() {
    let topic_agent = AgentId::new("mine-01-edge").unwrap();
    let other = AgentId::new("mine-02-edge").unwrap();
    let expected = BatchError::AgentMismatch {
        topic: "mine-02-edge".into(),
        payload: "mine-01-edge".into(),
    };

    let batch = envelope(json!([good_reading()])).to_string();
    assert!(decode_batch(batch.as_bytes(), Some(&topic_agent), now(), &limits()).is_ok());
    let err = decode_batch(batch.as_bytes(), Some(&other), now(), &limits()).unwrap_err();
    assert_eq!(err, expected);
    assert_eq!(err.code(), "agent_mismatch");
    assert_eq!(
        err.to_string(),
        "payload names agent \"mine-01-edge\" but was published on the topic of agent \"mine-02-edge\""
    );

    let birth = r#"{"agent":"mine-01-edge","points":[]}"#;
    assert!(decode_catalogue(birth.as_bytes(), Some(&topic_agent), &limits()).is_ok());
    assert_eq!(
        decode_catalogue(birth.as_bytes(), Some(&other), &limits()).unwrap_err(),
        expected
    );

    let status = r#"{"agent":"mine-01-edge","state":"offline","ts":"2026-11-28T10:00:00Z"}"#;
    assert!(decode_status(status.as_bytes(), Some(&topic_agent), &limits()).is_ok());
    assert_eq!(
        decode_status(status.as_bytes(), Some(&other), &limits()).unwrap_err(),
        expected
    );
}

// ---------------------------------------------------------------- one bad among good ones

#[test]
fn bad_readings_are_refused_alone_and_good_ones_taken_in_order() {
    let mut null_good = with("value", Some(Json::Null));
    null_good["point"] = json!("CH4-104");
    let readings = json!([
        {"point":"CH4-100","ts":"2026-11-28T09:59:00Z","value":0.1},
        {"point":"CH4-101","ts":"2026-11-28T10:06:00Z","value":0.2},
        {"point":"IL-R3","ts":"2026-11-28T09:59:01Z","value":true},
        {"point":"CH4 103","ts":"2026-11-28T09:59:02Z","value":0.3},
        null_good,
        {"point":"CH4-102","ts":"2026-11-28T09:59:03Z","value":null,"quality":"bad","reason":"modbus timeout"},
        17,
        {"point":"TRK-1","ts":"2026-11-28T09:59:04Z","value":{"lat":36.1,"lon":114.3}},
    ]);
    let batch = decode(&envelope(readings.clone())).unwrap();
    let taken: Vec<&str> = batch.readings.iter().map(|r| r.point.as_str()).collect();
    assert_eq!(taken, ["CH4-100", "IL-R3", "CH4-102", "TRK-1"]);
    assert_eq!(batch.readings[0].value, Value::Number(0.1));
    assert_eq!(batch.readings[2].reason.as_deref(), Some("modbus timeout"));

    let refused: Vec<(usize, Option<&str>, &str)> = batch
        .refused
        .iter()
        .map(|r| (r.index, r.point.as_deref(), r.error.code()))
        .collect();
    assert_eq!(
        refused,
        [
            (1, Some("CH4-101"), "future"),
            (3, Some("CH4 103"), "bad_id"),
            (4, Some("CH4-104"), "null_without_bad"),
            (6, None, "not_an_object"),
        ]
    );
    for r in &batch.refused {
        assert_eq!(
            r.raw,
            readings[r.index].to_string(),
            "the dead letter keeps the reading as it came"
        );
    }
}

#[test]
fn raw_of_a_huge_refused_reading_is_cut_to_a_few_hundred_bytes() {
    let mut r = with("unit", Some(json!("%")));
    r["reason"] = json!("x".repeat(5000));
    let refused = refused(r.clone());
    assert!(
        (200..=520).contains(&refused.raw.len()),
        "raw is {} bytes: {:?}",
        refused.raw.len(),
        refused.raw
    );
    let full = r.to_string();
    assert_eq!(
        refused.raw,
        format!("{}...", &full[..500]),
        "raw is the beginning of the reading"
    );

    // Multi-byte text is cut on a character boundary.
    let mut r = with("unit", Some(json!("%")));
    r["reason"] = json!("甲烷".repeat(2000));
    let full = r.to_string();
    let refused = self::refused(r);
    let kept = refused
        .raw
        .strip_suffix("...")
        .expect("a cut raw ends with ...");
    assert!(
        (497..=500).contains(&kept.len()),
        "raw is {} bytes",
        refused.raw.len()
    );
    assert!(full.starts_with(kept));
}

// ---------------------------------------------------------------- catalogue and status

#[test]
fn bad_points_of_a_catalogue_are_refused_alone() {
    let birth = json!({"agent":"a1","points":[
        {"point":"CH4-101","quantity":"ch4","unit":"%"},
        {"point":"bad point","quantity":"ch4","unit":"%"},
        {"point":"CH4-101","quantity":"co","unit":"ppm"},
        {"point":"CH4-102","quantity":"ch4","unit":"%","range":[4,0]},
        {"point":"CH4-103","quantity":"ch4","unit":"%","range":[1,1]},
        {"point":"LUX-1","quantity":"illuminance","unit":"lux"},
        {"point":"CH4-104","unit":"%"},
        {"point":"CH4-105","quantity":"ch4","unit":"%","tags":{"zone":1201}},
        {"point":"CH4-106","quantity":"ch4","unit":"%","interval_ms":-5},
        "CH4-107"
    ]});
    let decoded = decode_catalogue(birth.to_string().as_bytes(), None, &limits()).unwrap();
    let kept: Vec<&str> = decoded
        .catalogue
        .points
        .iter()
        .map(|p| p.point.as_str())
        .collect();
    assert_eq!(
        kept,
        ["CH4-101", "LUX-1"],
        "an unknown quantity or unit is kept as given"
    );
    assert_eq!(decoded.catalogue.points[1].unit, Unit::Other("lux".into()));
    let indices: Vec<usize> = decoded.refused.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [1, 2, 3, 4, 6, 7, 8, 9]);
    let reason = |i: usize| {
        decoded
            .refused
            .iter()
            .find(|(j, _)| *j == i)
            .unwrap()
            .1
            .as_str()
    };
    assert!(
        reason(1).contains("has a character outside"),
        "{}",
        reason(1)
    );
    assert_eq!(reason(2), "point CH4-101 is named twice");
    assert_eq!(reason(3), "point CH4-102: range [4, 0] is empty");
    assert_eq!(reason(4), "point CH4-103: range [1, 1] is empty");
    assert!(
        reason(6).contains("missing field `quantity`"),
        "{}",
        reason(6)
    );
}

#[test]
fn broken_catalogue_envelope_is_refused_whole() {
    let limits = limits();
    let err = |text: &str| decode_catalogue(text.as_bytes(), None, &limits).unwrap_err();
    assert_eq!(err(r#"{"points":[]}"#), BatchError::MissingField("agent"));
    assert_eq!(err(r#"{"agent":"a1"}"#), BatchError::MissingField("points"));
    assert_eq!(
        err(r#"{"agent":"a1","points":{}}"#),
        wrong_type("points", "an array")
    );
    assert_eq!(
        err(r#"{"agent":"a1","epoch":1,"points":[]}"#),
        wrong_type("epoch", "a string")
    );
    for site in [
        r#"{"region":"4105"}"#,
        r#"{"region":410522}"#,
        r#"{"lat":"36.1"}"#,
        r#"{"name":"x","owner":"y"}"#,
        r#""Zhaogu""#,
    ] {
        let e = err(&format!(r#"{{"agent":"a1","site":{site},"points":[]}}"#));
        assert!(
            matches!(&e, BatchError::Invalid { field: "site", .. }),
            "{site}: {e:?}"
        );
        assert_eq!(e.code(), "invalid");
    }
}

#[test]
fn bad_status_is_refused_with_a_reason() {
    let limits = limits();
    let err = |text: &str| decode_status(text.as_bytes(), None, &limits).unwrap_err();
    assert_eq!(
        err(r#"{"state":"online","ts":"2026-11-28T10:00:00Z"}"#),
        BatchError::MissingField("agent")
    );
    assert_eq!(
        err(r#"{"agent":7,"state":"online"}"#),
        wrong_type("agent", "a string")
    );
    assert!(matches!(
        err(r#"{"agent":"A1","state":"online","ts":"2026-11-28T10:00:00Z"}"#),
        BatchError::BadAgent(IdError::BadChar { .. })
    ));
    for (status, words) in [
        (
            r#"{"agent":"a1","state":"sleeping","ts":"2026-11-28T10:00:00Z"}"#,
            "unknown variant `sleeping`",
        ),
        (
            r#"{"agent":"a1","state":"online","ts":"2026-11-28T10:00:00"}"#,
            "has no zone",
        ),
        (
            r#"{"agent":"a1","state":"online","ts":"soon"}"#,
            "is not RFC 3339",
        ),
        (r#"{"agent":"a1","state":"online"}"#, "missing field `ts`"),
        (
            r#"{"agent":"a1","ts":"2026-11-28T10:00:00Z"}"#,
            "missing field `state`",
        ),
        (
            r#"{"agent":"a1","state":"online","ts":"2026-11-28T10:00:00Z","x":1}"#,
            "unknown field `x`",
        ),
    ] {
        let e = err(status);
        match &e {
            BatchError::Invalid {
                field: "status",
                reason,
            } => assert!(reason.contains(words), "{status}: {reason}"),
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(e.code(), "invalid");
    }
}

/// Free text of a catalogue is bounded: a point whose name, tag or unit runs past
/// `max_text_chars`, or with more than `max_tags` tags, is refused alone with its reason; a
/// site name past the bound refuses the birth.
#[test]
fn catalogue_text_is_bounded_per_point() {
    let limits = DecodeLimits::default();
    let long = "长".repeat(limits.max_text_chars + 1);
    let many_tags: serde_json::Map<String, Json> = (0..=limits.max_tags)
        .map(|i| (format!("t{i}"), json!("v")))
        .collect();
    let birth = json!({"agent": "a1", "points": [
        {"point": "CH4-1", "quantity": "ch4", "unit": "%", "name": "ok"},
        {"point": "CH4-2", "quantity": "ch4", "unit": "%", "name": long},
        {"point": "CH4-3", "quantity": "ch4", "unit": "%", "tags": {"zone": long}},
        {"point": "CH4-4", "quantity": "ch4", "unit": long},
        {"point": "CH4-5", "quantity": "ch4", "unit": "%", "tags": many_tags},
        {"point": "CH4-6", "quantity": "ch4", "unit": "%", "name": "长".repeat(limits.max_text_chars)},
    ]});
    let d = decode_catalogue(birth.to_string().as_bytes(), None, &limits).unwrap();
    let kept: Vec<&str> = d
        .catalogue
        .points
        .iter()
        .map(|p| p.point.as_str())
        .collect();
    assert_eq!(kept, ["CH4-1", "CH4-6"], "exactly at the bound is kept");
    let reasons: Vec<&str> = d.refused.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        reasons[0].contains("CH4-2: name longer than 256"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("tag \"zone\" longer"), "{reasons:?}");
    assert!(reasons[2].contains("CH4-4: unit longer"), "{reasons:?}");
    assert!(reasons[3].contains("33 tags"), "{reasons:?}");
    let birth = json!({"agent": "a1", "site": {"name": long}, "points": []});
    let e = decode_catalogue(birth.to_string().as_bytes(), None, &limits).unwrap_err();
    assert!(e.to_string().contains("name longer than 256"), "{e}");
}
