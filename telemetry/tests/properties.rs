//! Properties of the batch codec, over generated input.
//!
//! - A valid batch, written here as JSON text from generated parts (not by telemetry's own
//!   `Serialize`), decodes whole, each reading equal to the one generated.
//! - Corrupting a random subset of its readings, each with a corruption whose refusal code is
//!   known, refuses exactly those, each with its code, index and point, and takes every other
//!   reading unchanged, in order.
//! - No input at all makes a decoder panic.

use chrono::{FixedOffset, SecondsFormat};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value as Json};
use telemetry::{
    decode_batch, decode_catalogue, decode_status, parse_time, AgentId, DecodeLimits, PointId,
    Position, Quality, Reading, Timestamp, Value,
};

fn now() -> Timestamp {
    parse_time("2026-11-28T10:00:00Z").unwrap()
}

const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
const TEN_YEARS_MS: i64 = 10 * 365 * 86_400 * 1000;

// ---------------------------------------------------------------- generators of valid parts

fn agent_id() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,63}"
}

fn point_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
}

/// Write `t` in RFC 3339 with the given offset, precision and spelling of UTC.
fn write_time(t: Timestamp, offset_min: i32, precision: SecondsFormat, use_z: bool) -> String {
    t.with_timezone(&FixedOffset::east_opt(offset_min * 60).unwrap())
        .to_rfc3339_opts(precision, use_z)
}

/// A time from ten years back up to exactly the 5 minutes ahead the contract allows, written
/// with a random zone and precision; the instant is what the text says.
fn valid_time() -> impl Strategy<Value = (Timestamp, String)> {
    (
        -TEN_YEARS_MS..=MAX_FUTURE_MS,
        0..1_000_000i64,
        -(14 * 60)..=(14 * 60),
        select(vec![
            SecondsFormat::Secs,
            SecondsFormat::Millis,
            SecondsFormat::Micros,
            SecondsFormat::Nanos,
        ]),
        any::<bool>(),
    )
        .prop_map(|(ms, sub_ms_ns, offset_min, precision, use_z)| {
            let mut t = now() + chrono::Duration::milliseconds(ms);
            match precision {
                // Whole seconds: round down, so the time stays within the allowed future.
                SecondsFormat::Secs => t -= chrono::Duration::milliseconds(ms.rem_euclid(1000)),
                SecondsFormat::Micros => {
                    t -= chrono::Duration::nanoseconds(sub_ms_ns / 1000 * 1000)
                }
                SecondsFormat::Nanos => t -= chrono::Duration::nanoseconds(sub_ms_ns),
                _ => {}
            }
            (t, write_time(t, offset_min, precision, use_z))
        })
}

/// A finite number: the decimals sensors send, and any finite f64 at all.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000_000i64..1_000_000_000, 0..7u32)
            .prop_map(|(m, scale)| { format!("{m}e-{scale}").parse::<f64>().unwrap() }),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
    ]
}

/// An optional position field: absent, explicitly null, or a number.
fn optional_field(
    range: std::ops::RangeInclusive<f64>,
) -> impl Strategy<Value = (Option<f64>, bool)> {
    prop_oneof![
        Just((None, false)),
        Just((None, true)),
        range.prop_map(|v| (Some(v), false))
    ]
}

fn position() -> impl Strategy<Value = (Position, Json)> {
    (
        -90.0..=90.0f64,
        -180.0..=180.0f64,
        optional_field(0.0..=300.0),
        optional_field(0.0..=360.0),
        optional_field(-500.0..=9000.0),
    )
        .prop_map(|(lat, lon, speed, heading, alt)| {
            let mut o = Map::new();
            o.insert("lat".into(), json!(lat));
            o.insert("lon".into(), json!(lon));
            for (key, (v, explicit_null)) in
                [("speed_kmh", speed), ("heading", heading), ("alt_m", alt)]
            {
                match v {
                    Some(v) => drop(o.insert(key.into(), json!(v))),
                    None if explicit_null => drop(o.insert(key.into(), Json::Null)),
                    None => {}
                }
            }
            let p = Position {
                lat,
                lon,
                speed_kmh: speed.0,
                heading: heading.0,
                alt_m: alt.0,
            };
            (p, Json::Object(o))
        })
}

/// How the quality is written: left out, null, or one of the four words.
#[derive(Debug, Clone, Copy, PartialEq)]
enum QualityField {
    Absent,
    Null,
    Word(Quality),
}

impl QualityField {
    fn quality(self) -> Quality {
        match self {
            QualityField::Word(q) => q,
            _ => Quality::Good,
        }
    }
}

fn quality_field() -> impl Strategy<Value = QualityField> {
    select(vec![
        QualityField::Absent,
        QualityField::Null,
        QualityField::Word(Quality::Good),
        QualityField::Word(Quality::Uncertain),
        QualityField::Word(Quality::Bad),
        QualityField::Word(Quality::Calibration),
    ])
}

/// A valid reading: the JSON text's parts and the reading it must decode to.
#[derive(Debug, Clone)]
struct GenReading {
    fields: Vec<(String, Json)>,
    expected: Reading,
}

impl GenReading {
    fn json(&self) -> Json {
        Json::Object(self.fields.iter().cloned().collect())
    }
    fn point(&self) -> &str {
        self.expected.point.as_str()
    }
}

fn valid_reading() -> impl Strategy<Value = GenReading> {
    let value = prop_oneof![
        number().prop_map(|v| (Value::Number(v), json!(v))),
        any::<bool>().prop_map(|b| (Value::Bool(b), json!(b))),
        position().prop_map(|(p, j)| (Value::Position(p), j)),
        Just((Value::Null, Json::Null)),
    ];
    (
        point_id(),
        valid_time(),
        value,
        quality_field(),
        prop::option::of("\\PC{0,300}"),
        any::<u64>(),
    )
        .prop_map(
            |(point, (ts, ts_text), (value, value_json), quality, reason, order_seed)| {
                // null is only valid with quality bad.
                let quality = if value.is_null() {
                    QualityField::Word(Quality::Bad)
                } else {
                    quality
                };
                let mut fields = vec![
                    ("point".to_string(), json!(point)),
                    ("ts".to_string(), json!(ts_text)),
                    ("value".to_string(), value_json),
                ];
                match quality {
                    QualityField::Absent => {}
                    QualityField::Null => fields.push(("quality".into(), Json::Null)),
                    QualityField::Word(q) => fields.push(("quality".into(), json!(q.as_str()))),
                }
                if let Some(reason) = &reason {
                    fields.push(("reason".into(), json!(reason)));
                }
                // Any order of keys: a rotation picked by the seed, reversed half the time.
                let n = fields.len();
                fields.rotate_left((order_seed % n as u64) as usize);
                if order_seed & 0x100 != 0 {
                    fields.reverse();
                }
                let expected = Reading {
                    point: PointId::new(point).unwrap(),
                    ts,
                    value,
                    quality: quality.quality(),
                    reason: reason.map(|r| {
                        r.chars()
                            .take(DecodeLimits::default().max_reason_chars)
                            .collect()
                    }),
                };
                GenReading { fields, expected }
            },
        )
}

fn batch_text(agent: &str, epoch: Option<&str>, seq: u64, readings: Vec<Json>) -> String {
    let mut o = Map::new();
    o.insert("agent".into(), json!(agent));
    if let Some(epoch) = epoch {
        o.insert("epoch".into(), json!(epoch));
    }
    o.insert("seq".into(), json!(seq));
    o.insert("readings".into(), Json::Array(readings));
    Json::Object(o).to_string()
}

// ---------------------------------------------------------------- corruptions

/// One way to spoil a valid reading, with the refusal it must earn.
#[derive(Debug, Clone)]
enum Corruption {
    UnknownField(String),
    Missing(&'static str),
    WrongType(&'static str, Json),
    BadPointChar(String),
    PointTooLong(String),
    TimeWithoutZone,
    MalformedTime(String),
    Future { beyond_ms: i64, offset_min: i32 },
    UnknownQuality(String),
    NullWithoutBad(QualityField),
    BadValue(Json),
    PositionOutOfRange(Json),
    NotAnObject(Json),
}

impl Corruption {
    fn code(&self) -> &'static str {
        match self {
            Corruption::UnknownField(_) => "unknown_field",
            Corruption::Missing(_) => "missing_field",
            Corruption::WrongType(..) => "wrong_type",
            Corruption::BadPointChar(_) | Corruption::PointTooLong(_) => "bad_id",
            Corruption::TimeWithoutZone => "time_without_zone",
            Corruption::MalformedTime(_) => "bad_time",
            Corruption::Future { .. } => "future",
            Corruption::UnknownQuality(_) => "bad_quality",
            Corruption::NullWithoutBad(_) => "null_without_bad",
            Corruption::BadValue(_) => "bad_value",
            Corruption::PositionOutOfRange(_) => "bad_position",
            Corruption::NotAnObject(_) => "not_an_object",
        }
    }

    /// The point the refusal must name: the point text, where the spoiled reading has one.
    fn point(&self, original: &GenReading) -> Option<String> {
        match self {
            Corruption::NotAnObject(_)
            | Corruption::Missing("point")
            | Corruption::WrongType("point", _) => None,
            Corruption::BadPointChar(p) | Corruption::PointTooLong(p) => Some(p.clone()),
            _ => Some(original.point().to_string()),
        }
    }

    fn apply(&self, r: &GenReading) -> Json {
        let mut j = r.json();
        let o = j.as_object_mut().unwrap();
        match self {
            Corruption::UnknownField(name) => drop(o.insert(name.clone(), json!(1))),
            Corruption::Missing(field) => drop(o.remove(*field)),
            Corruption::WrongType(field, v) => drop(o.insert(field.to_string(), v.clone())),
            Corruption::BadPointChar(p) | Corruption::PointTooLong(p) => {
                drop(o.insert("point".into(), json!(p)))
            }
            Corruption::TimeWithoutZone => {
                let naive = r
                    .expected
                    .ts
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.f")
                    .to_string();
                o.insert("ts".into(), json!(naive));
            }
            Corruption::MalformedTime(s) => drop(o.insert("ts".into(), json!(s))),
            Corruption::Future {
                beyond_ms,
                offset_min,
            } => {
                let t = now() + chrono::Duration::milliseconds(MAX_FUTURE_MS + beyond_ms);
                o.insert(
                    "ts".into(),
                    json!(write_time(t, *offset_min, SecondsFormat::Millis, true)),
                );
            }
            Corruption::UnknownQuality(q) => drop(o.insert("quality".into(), json!(q))),
            Corruption::NullWithoutBad(q) => {
                o.insert("value".into(), Json::Null);
                match q {
                    QualityField::Absent => drop(o.remove("quality")),
                    QualityField::Null => drop(o.insert("quality".into(), Json::Null)),
                    QualityField::Word(w) => drop(o.insert("quality".into(), json!(w.as_str()))),
                }
            }
            Corruption::BadValue(v) | Corruption::PositionOutOfRange(v) => {
                drop(o.insert("value".into(), v.clone()))
            }
            Corruption::NotAnObject(v) => return v.clone(),
        }
        j
    }
}

/// JSON of every type but the ones listed.
fn json_other_than(allowed: &'static [&'static str]) -> impl Strategy<Value = Json> {
    let all = vec![
        ("null", Json::Null),
        ("bool", json!(true)),
        ("number", json!(1764324000)),
        ("string", json!("2026-11-28T10:00:00Z")),
        ("array", json!(["CH4-101"])),
        ("object", json!({"point":"CH4-101"})),
    ];
    select(
        all.into_iter()
            .filter(|(k, _)| !allowed.contains(k))
            .map(|(_, v)| v)
            .collect::<Vec<_>>(),
    )
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let bad_point_char = (
        point_id(),
        any::<prop::sample::Index>(),
        select(vec![" ", "/", "#", "+", "é", "\u{0}", "甲", "\""]),
    )
        .prop_map(|(p, at, c)| {
            let at = at.index(p.len() + 1);
            format!("{}{}{}", &p[..at], c, &p[at..])
        });
    let bad_first_char =
        (select(vec![".", "_", "-", ":"]), point_id()).prop_map(|(c, p)| format!("{c}{p}"));
    prop_oneof![
        "[a-z_]{1,12}"
            .prop_filter("not a reading field", |k| !matches!(
                k.as_str(),
                "point" | "ts" | "value" | "quality" | "reason"
            ))
            .prop_map(Corruption::UnknownField),
        select(vec!["point", "ts", "value"]).prop_map(Corruption::Missing),
        json_other_than(&["string"]).prop_map(|v| Corruption::WrongType("point", v)),
        json_other_than(&["string"]).prop_map(|v| Corruption::WrongType("ts", v)),
        json_other_than(&["string", "null"]).prop_map(|v| Corruption::WrongType("quality", v)),
        json_other_than(&["string", "null"]).prop_map(|v| Corruption::WrongType("reason", v)),
        prop_oneof![bad_point_char, bad_first_char].prop_map(Corruption::BadPointChar),
        "[A-Za-z0-9][A-Za-z0-9_.:-]{64,150}".prop_map(Corruption::PointTooLong),
        Just(Corruption::TimeWithoutZone),
        select(vec![
            "",
            "now",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-11-28T10:00:00+8",
            "1764324000"
        ])
        .prop_map(|s| Corruption::MalformedTime(s.to_string())),
        (1..=TEN_YEARS_MS, -(14 * 60)..=(14 * 60)).prop_map(|(beyond_ms, offset_min)| {
            Corruption::Future {
                beyond_ms,
                offset_min,
            }
        }),
        "[A-Za-z ]{0,12}"
            .prop_filter("not a quality", |q| Quality::parse(q).is_none())
            .prop_map(Corruption::UnknownQuality),
        select(vec![
            QualityField::Absent,
            QualityField::Null,
            QualityField::Word(Quality::Good),
            QualityField::Word(Quality::Uncertain),
            QualityField::Word(Quality::Calibration),
        ])
        .prop_map(Corruption::NullWithoutBad),
        select(vec![
            json!("0.42"),
            json!("true"),
            json!([]),
            json!([0.42, 1])
        ])
        .prop_map(Corruption::BadValue),
        prop_oneof![
            (90.000_001..1e6f64, any::<bool>(), -180.0..=180.0f64).prop_map(
                |(lat, neg, lon)| json!({"lat": if neg { -lat } else { lat }, "lon": lon})
            ),
            (-90.0..=90.0f64, 180.000_001..1e6f64, any::<bool>()).prop_map(
                |(lat, lon, neg)| json!({"lat": lat, "lon": if neg { -lon } else { lon }})
            ),
        ]
        .prop_map(Corruption::PositionOutOfRange),
        select(vec![
            json!(0),
            json!("CH4-101"),
            json!([]),
            Json::Null,
            json!(false)
        ])
        .prop_map(Corruption::NotAnObject),
    ]
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_batch_decodes_whole(
        agent in agent_id(),
        epoch in prop::option::of("[a-z0-9]{0,64}"),
        seq in any::<u64>(),
        readings in prop::collection::vec(valid_reading(), 0..40),
    ) {
        let text = batch_text(&agent, epoch.as_deref(), seq, readings.iter().map(GenReading::json).collect());
        let topic_agent = AgentId::new(agent.as_str()).unwrap();
        let batch = decode_batch(text.as_bytes(), Some(&topic_agent), now(), &DecodeLimits::default()).unwrap();
        prop_assert_eq!(batch.agent, topic_agent);
        prop_assert_eq!(batch.epoch, epoch.unwrap_or_default());
        prop_assert_eq!(batch.seq, seq);
        prop_assert_eq!(batch.refused, vec![]);
        let expected: Vec<Reading> = readings.into_iter().map(|r| r.expected).collect();
        prop_assert_eq!(batch.readings, expected);
    }

    #[test]
    fn corrupted_readings_are_refused_alone(
        agent in agent_id(),
        seq in any::<u64>(),
        readings in prop::collection::vec((valid_reading(), prop::option::weighted(0.3, corruption())), 1..40),
    ) {
        let items: Vec<Json> = readings
            .iter()
            .map(|(r, c)| c.as_ref().map_or_else(|| r.json(), |c| c.apply(r)))
            .collect();
        let text = batch_text(&agent, Some("e1"), seq, items);
        let batch = decode_batch(text.as_bytes(), None, now(), &DecodeLimits::default()).unwrap();

        let expected_taken: Vec<Reading> =
            readings.iter().filter(|(_, c)| c.is_none()).map(|(r, _)| r.expected.clone()).collect();
        prop_assert_eq!(&batch.readings, &expected_taken);

        let expected_refused: Vec<(usize, &str, Option<String>)> = readings
            .iter()
            .enumerate()
            .filter_map(|(i, (r, c))| c.as_ref().map(|c| (i, c.code(), c.point(r))))
            .collect();
        prop_assert_eq!(batch.refused.len(), expected_refused.len(), "refused: {:?}", batch.refused);
        for (got, (index, code, point)) in batch.refused.iter().zip(&expected_refused) {
            prop_assert_eq!(got.index, *index);
            prop_assert_eq!(got.error.code(), *code, "reading {} refused as {:?}", index, got.error);
            match point {
                // A point id too long to name whole is named by its first 64 bytes (cut on a
                // character boundary).
                Some(p) if p.len() > 64 => {
                    let named = got.point.as_deref().unwrap_or_default();
                    let end = (0..=64).rev().find(|&i| p.is_char_boundary(i)).unwrap_or(0);
                    prop_assert!(named.starts_with(&p[..end]) && named.len() <= 64 + "...".len(), "{:?}", got.point);
                }
                _ => prop_assert_eq!(&got.point, point),
            }
        }
    }
}

// ---------------------------------------------------------------- no input panics a decoder

/// Every decoder on the same bytes, with limits small enough that every limit can be hit.
fn decode_everything(bytes: &[u8]) {
    let small = DecodeLimits {
        max_bytes: 300,
        max_items: 3,
        max_depth: 4,
        ..DecodeLimits::default()
    };
    let agent = AgentId::new("mine-01-edge").unwrap();
    for limits in [DecodeLimits::default(), small] {
        for topic_agent in [None, Some(&agent)] {
            if let Ok(batch) = decode_batch(bytes, topic_agent, now(), &limits) {
                let total = batch.readings.len() + batch.refused.len();
                assert!(total <= limits.max_items);
                assert!(batch.refused.windows(2).all(|w| w[0].index < w[1].index));
                assert!(batch.refused.iter().all(|r| r.index < total));
            }
            let _ = decode_catalogue(bytes, topic_agent, &limits);
            let _ = decode_status(bytes, topic_agent, &limits);
        }
    }
}

/// An edit of a byte string: overwrite, insert or delete at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        any::<u8>(),
        select(b"{}[]\",:\\0123456789-+.eEtrufalsn \x00\x7f\xc3\xe7\xf0\xff".to_vec()),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), interesting.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<prop::sample::Index>(), interesting).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
    ]
}

fn apply_edits(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match e {
            Edit::Set(i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Edit::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, *b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

const SEEDS: [&str; 3] = [
    r#"{"agent":"mine-01-edge","epoch":"7f3a","seq":42,"readings":[
 {"point":"CH4-101","ts":"2026-11-28T10:00:00.000Z","value":0.42,"quality":"good"},
 {"point":"IL-R3","ts":"2026-11-28T10:00:00.000Z","value":true},
 {"point":"CH4-102","ts":"2026-11-28T10:00:00.000Z","value":null,"quality":"bad","reason":"modbus timeout"},
 {"point":"TRK-YA12345","ts":"2026-11-28T10:00:00.000Z",
  "value":{"lat":36.0975,"lon":114.3928,"speed_kmh":82.5,"heading":90,"alt_m":75}}]}"#,
    r#"{"agent":"mine-01-edge","epoch":"7f3a","site":{"name":"Zhaogu No.1 mine","category":"coal_mine","region":"410522","lat":36.10,"lon":114.30},
 "points":[{"point":"CH4-101","quantity":"ch4","unit":"%","location":"working_face","range":[0,4],"interval_ms":10000,"tags":{"zone":"1201"}},
  {"point":"H2S-3","quantity":"toxic","gas":"h2s","unit":"ppm"}]}"#,
    r#"{"agent":"mine-01-edge","state":"online","ts":"2026-11-28T10:00:00Z"}"#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&bytes);
    }

    #[test]
    fn json_like_text_never_panics_a_decoder(text in r#"[\[\]{}",:0-9a-zA-Z .eE+\\-]{0,400}"#) {
        decode_everything(text.as_bytes());
    }

    #[test]
    fn edited_contract_examples_never_panic_a_decoder(
        seed in select(SEEDS.to_vec()),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        decode_everything(&apply_edits(seed.as_bytes().to_vec(), &edits));
    }
}
