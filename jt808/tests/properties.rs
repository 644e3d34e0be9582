//! Properties: every message encodes and decodes back to itself (both layouts, escaped, in
//! one frame or in sub-packages fed in any chunking), and no input panics the splitter, the
//! frame decoder or the body decoders.

use jt808::message::id;
use jt808::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    // ASCII and Chinese characters GBK carries; no 0x00 (it is the padding).
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            Just('豫'),
            Just('粤'),
            Just('张'),
            Just('~'),
        ],
        0..=max_chars,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn bcd_time() -> impl Strategy<Value = BcdTime> {
    (0u32..100, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60).prop_map(
        |(y, mo, d, h, mi, s)| {
            let t = chrono::NaiveDate::from_ymd_opt(2000 + y as i32, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap();
            BcdTime::from_local(t)
        },
    )
}

fn active_safety() -> impl Strategy<Value = ActiveSafety> {
    (
        0usize..4,
        any::<u32>(),
        any::<(u8, u8, u8, [u8; 5], u8, u16)>(),
        any::<(u32, u32, u16)>(),
        bcd_time(),
        prop_oneof![Just(16usize), Just(40usize)],
        proptest::collection::vec(any::<(u8, u16, u16, u16, u16)>(), 0..4),
    )
        .prop_map(
            |(
                k,
                alarm_id,
                (flag, t, level, sp, speed, alt),
                (lat, lon, vs),
                time,
                ident_len,
                tyres,
            )| {
                let kind = [
                    ActiveSafetyKind::Adas,
                    ActiveSafetyKind::Dsm,
                    ActiveSafetyKind::Tyre,
                    ActiveSafetyKind::BlindSpot,
                ][k];
                let adas_dsm = matches!(kind, ActiveSafetyKind::Adas | ActiveSafetyKind::Dsm);
                ActiveSafety {
                    kind,
                    alarm_id,
                    flag,
                    event_type: if kind == ActiveSafetyKind::Tyre { 0 } else { t },
                    level: if adas_dsm { level } else { 0 },
                    specific: adas_dsm.then_some(sp),
                    speed_kmh: speed,
                    altitude_m: alt,
                    lat_e6: lat,
                    lon_e6: lon,
                    time,
                    vehicle_status: vs,
                    ident: (0..ident_len as u8).collect(),
                    tyres: if kind == ActiveSafetyKind::Tyre {
                        tyres
                            .into_iter()
                            .map(
                                |(
                                    position,
                                    alarm_type,
                                    pressure_kpa,
                                    temperature_c,
                                    battery_pct,
                                )| TyreEvent {
                                    position,
                                    alarm_type,
                                    pressure_kpa,
                                    temperature_c,
                                    battery_pct,
                                },
                            )
                            .collect()
                    } else {
                        Vec::new()
                    },
                }
            },
        )
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        any::<u32>().prop_map(Extra::Mileage),
        any::<u16>().prop_map(Extra::Fuel),
        any::<u16>().prop_map(Extra::RecorderSpeed),
        Just(Extra::OverspeedArea {
            kind: 0,
            area_id: None
        }),
        (1u8.., any::<u32>()).prop_map(|(kind, a)| Extra::OverspeedArea {
            kind,
            area_id: Some(a)
        }),
        any::<(u8, u32, u8)>().prop_map(|(kind, area_id, direction)| Extra::AreaRoute {
            kind,
            area_id,
            direction
        }),
        any::<(u32, u16, u8)>().prop_map(|(route_id, drive_time_s, result)| Extra::RouteTime {
            route_id,
            drive_time_s,
            result
        }),
        any::<u32>().prop_map(Extra::ExtendedSignals),
        any::<u16>().prop_map(Extra::IoStatus),
        any::<u32>().prop_map(Extra::Analog),
        any::<u8>().prop_map(Extra::SignalStrength),
        any::<u8>().prop_map(Extra::Satellites),
        active_safety().prop_map(Extra::ActiveSafety),
        (0xE0u8..=0xFF, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(id, value)| Extra::Unknown { id, value }),
    ]
}

fn location() -> impl Strategy<Value = Location> {
    (
        any::<(u32, u32, u32, u32)>(),
        any::<(u16, u16, u16)>(),
        bcd_time(),
        proptest::collection::vec(extra(), 0..6),
    )
        .prop_map(
            |((alarm, status, lat_e6, lon_e6), (altitude_m, speed_dkmh, heading), time, extras)| {
                Location {
                    alarm,
                    status,
                    lat_e6,
                    lon_e6,
                    altitude_m,
                    speed_dkmh,
                    heading,
                    time,
                    extras,
                }
            },
        )
}

fn message(v2019: bool) -> impl Strategy<Value = Message> {
    let (maker, model, tid) = if v2019 { (11, 30, 30) } else { (5, 20, 7) };
    prop_oneof![
        any::<(u16, u16, u8)>().prop_map(|(serial, msg_id, result)| Message::TerminalResponse(
            GeneralResponse {
                serial,
                msg_id,
                result
            }
        )),
        any::<(u16, u16, u8)>().prop_map(|(serial, msg_id, result)| Message::PlatformResponse(
            GeneralResponse {
                serial,
                msg_id,
                result
            }
        )),
        Just(Message::Heartbeat),
        Just(Message::Logout),
        (
            any::<(u16, u16, u8)>(),
            text(maker / 2),
            text(model / 2),
            text(tid / 2),
            text(8)
        )
            .prop_map(
                |((province, city, plate_colour), maker, model, terminal_id, plate)| {
                    Message::Registration(Registration {
                        province,
                        city,
                        maker,
                        model,
                        terminal_id,
                        plate_colour,
                        plate,
                    })
                }
            ),
        (text(40), text(7), text(10)).prop_map(move |(code, imei, sv)| Message::Authentication(
            Authentication {
                code,
                imei: v2019.then_some(imei),
                software_version: v2019.then_some(sv),
            }
        )),
        location().prop_map(Message::Location),
        (0u8..2, proptest::collection::vec(location(), 0..8))
            .prop_map(|(kind, items)| Message::LocationBatch(LocationBatch { kind, items })),
        (
            1u8..3,
            bcd_time(),
            proptest::option::of((
                0u8..5,
                text(10),
                text(10),
                text(20),
                0u32..99_999_999,
                text(10)
            ))
        )
            .prop_map(move |(status, time, card)| {
                let (ic_result, driver) = match card {
                    None => (None, None),
                    Some((r, _, _, _, _, _)) if r != 0 => (Some(r), None),
                    Some((_, name, licence, authority, expiry, id_card)) => (
                        Some(0),
                        Some(DriverDetails {
                            name,
                            licence,
                            authority,
                            expiry: format!("{expiry:08}"),
                            id_card: v2019.then_some(id_card),
                        }),
                    ),
                };
                Message::DriverIdentity(DriverIdentity {
                    status,
                    time,
                    ic_result,
                    driver,
                })
            }),
        (any::<u16>(), 0u8..5, text(30)).prop_map(|(serial, result, code)| {
            Message::RegistrationResponse(RegistrationResponse {
                serial,
                result,
                auth_code: (result == 0).then_some(code),
            })
        }),
        (
            (0x0900u16..0x0A00),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(msg_id, body)| Message::Other { msg_id, body }),
    ]
}

fn header_and_message() -> impl Strategy<Value = (Header, Message)> {
    any::<bool>().prop_flat_map(|v2019| {
        (
            proptest::collection::vec(0u8..10, if v2019 { 20 } else { 12 }),
            any::<u16>(),
            1u8..,
            message(v2019),
        )
            .prop_map(move |(digits, serial, pv, m)| {
                let phone: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                let mut h = if v2019 {
                    Header::v2019(m.msg_id(), &phone, serial)
                } else {
                    Header::v2013(m.msg_id(), &phone, serial)
                };
                if v2019 {
                    h.protocol_version = pv;
                }
                (h, m)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_gives_the_message_back((header, msg) in header_and_message(), chunk in 1usize..64, package in 16usize..1024) {
        let body = msg.encode_body(header.layout);
        let frames = encode_packages(&header, &body, package).unwrap();
        let stream: Vec<u8> = frames.concat();
        let mut split = FrameSplitter::new(4096);
        let mut r = Reassembler::new(4, 1 << 20, Duration::from_secs(60));
        let now = Instant::now();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            split.push(c);
            while let Some(raw) = split.next_frame() {
                let f = decode_frame(&raw.unwrap()).unwrap();
                if let Some((h, b)) = r.push(&f.header, f.body, now).unwrap() {
                    got.push((h.clone(), Message::decode(&h, &b).unwrap()));
                }
            }
        }
        prop_assert_eq!(got, vec![(header, msg)]);
        prop_assert_eq!(split.garbage_bytes(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..50) {
        let mut split = FrameSplitter::new(300);
        let mut r = Reassembler::new(2, 2048, Duration::from_secs(1));
        let now = Instant::now();
        for c in bytes.chunks(chunk) {
            split.push(c);
            while let Some(raw) = split.next_frame() {
                prop_assert!(split.pending_bytes() <= 300 + chunk);
                let Ok(raw) = raw else { continue };
                if let Ok(f) = decode_frame(&raw) {
                    if let Ok(Some((h, b))) = r.push(&f.header, f.body, now) {
                        let _ = Message::decode(&h, &b);
                    }
                }
            }
        }
        // Every body decoder on the raw bytes, in both layouts.
        for v2019 in [false, true] {
            for msg_id in [id::TERMINAL_RESPONSE, id::REGISTRATION, id::AUTHENTICATION, id::LOCATION, id::DRIVER_IDENTITY, id::LOCATION_BATCH, id::PLATFORM_RESPONSE, id::REGISTRATION_RESPONSE] {
                let h = if v2019 { Header::v2019(msg_id, "1", 1) } else { Header::v2013(msg_id, "1", 1) };
                let _ = Message::decode(&h, &bytes);
            }
        }
    }

    #[test]
    fn a_valid_frame_survives_garbage_around_it((header, msg) in header_and_message(), before in proptest::collection::vec(any::<u8>(), 0..50), after in proptest::collection::vec(any::<u8>(), 0..50)) {
        let body = msg.encode_body(header.layout);
        prop_assume!(body.len() <= MAX_BODY);
        let frame = encode_frame(&header, &body).unwrap();
        let mut stream = before.clone();
        stream.extend(&frame);
        stream.extend(&after);
        let mut split = FrameSplitter::new(4096);
        split.push(&stream);
        let mut found = false;
        while let Some(raw) = split.next_frame() {
            if let Ok(Ok(f)) = raw.map(|r| decode_frame(&r)) {
                if f.header == header && Message::decode(&f.header, &f.body).as_ref() == Ok(&msg) {
                    found = true;
                }
            }
        }
        prop_assert!(found);
    }
}

/// What the fuzz target checks, for one input: a decoded message encodes to a body that
/// decodes, and from then on encoding and decoding is the identity.
fn fuzz_check(data: &[u8]) {
    let (chunk, stream) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => return,
    };
    let mut split = FrameSplitter::new(512);
    let mut r = Reassembler::new(4, 4096, Duration::from_secs(10));
    let t0 = Instant::now();
    for (i, c) in stream.chunks(chunk).enumerate() {
        split.push(c);
        while let Some(raw) = split.next_frame() {
            let Ok(raw) = raw else { continue };
            let Ok(f) = decode_frame(&raw) else { continue };
            let now = t0 + Duration::from_millis(i as u64 * 100);
            let Ok(Some((h, body))) = r.push(&f.header, f.body, now) else {
                continue;
            };
            if let Ok(m) = Message::decode(&h, &body) {
                let m2 = Message::decode(&h, &m.encode_body(h.layout)).unwrap();
                let m3 = Message::decode(&h, &m2.encode_body(h.layout)).unwrap();
                assert_eq!(m2, m3);
            }
        }
    }
}

/// Inputs the fuzzer found (`tests/data/fuzz/`), kept as regressions.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        fuzz_check(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 1);
}

/// The first finding: a driver's licence cut to its 20 bytes inside a two-byte character
/// became undecodable text. Text is now cut at a character boundary.
#[test]
fn text_is_cut_at_a_character_boundary() {
    let d = DriverIdentity {
        status: 1,
        time: BcdTime([0x26, 1, 1, 0, 0, 0]),
        ic_result: Some(0),
        driver: Some(DriverDetails {
            name: "张三".into(),
            licence: "1234567890123456789张".into(),
            authority: "局".into(),
            expiry: "20301231".into(),
            id_card: None,
        }),
    };
    let h = Header::v2013(id::DRIVER_IDENTITY, "1", 1);
    let m = Message::decode(&h, &Message::DriverIdentity(d).encode_body(h.layout)).unwrap();
    let Message::DriverIdentity(got) = &m else {
        panic!()
    };
    assert_eq!(got.driver.as_ref().unwrap().licence, "1234567890123456789");
    assert_eq!(Message::decode(&h, &m.encode_body(h.layout)).unwrap(), m);
}
