//! Every frame of a supported message type in the public reference data (see
//! `tests/data/README.md`) decodes to the values its source claims, encodes back to the same
//! bytes, and the two frames with wrong check codes are refused.

use jt808::message::id;
use jt808::*;
use serde_json::Value;
use std::path::Path;

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn supported(msg_id: u16) -> bool {
    matches!(
        msg_id,
        id::TERMINAL_RESPONSE
            | id::HEARTBEAT
            | id::LOGOUT
            | id::REGISTRATION
            | id::AUTHENTICATION
            | id::LOCATION
            | id::DRIVER_IDENTITY
            | id::LOCATION_BATCH
            | id::PLATFORM_RESPONSE
            | id::REGISTRATION_RESPONSE
    )
}

/// Split, decode, decode the body, and check that encoding gives the same frame back.
fn decode_hex(frame_hex: &str) -> (Header, Message) {
    let bytes = hex::decode(frame_hex.trim()).unwrap();
    let mut s = FrameSplitter::new(4096);
    s.push(&bytes);
    let raw = s
        .next_frame()
        .unwrap_or_else(|| panic!("no frame in {frame_hex}"))
        .unwrap_or_else(|e| panic!("{e}: {frame_hex}"));
    assert!(s.next_frame().is_none(), "one frame in {frame_hex}");
    assert_eq!(s.garbage_bytes(), 0);
    let f = decode_frame(&raw).unwrap_or_else(|e| panic!("{e}: {frame_hex}"));
    let m = Message::decode(&f.header, &f.body).unwrap_or_else(|e| panic!("{e}: {frame_hex}"));
    if supported(f.header.msg_id) {
        assert!(!matches!(m, Message::Other { .. }));
        assert_eq!(
            hex::encode(m.encode_frame(&f.header).unwrap()),
            frame_hex.trim().to_lowercase(),
            "encodes back to the same bytes: {m:?}"
        );
    }
    (f.header, m)
}

fn local_time(t: &BcdTime) -> String {
    t.local().unwrap().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn extra_ids(l: &Location) -> Vec<u8> {
    l.extras.iter().filter_map(Extra::id).collect()
}

// ---------------------------------------------------------------- SmallChi/JT808 (MIT)

#[test]
fn smallchi_frames() {
    let entries: Vec<Value> = serde_json::from_str(&data("smallchi_jt808_frames.json")).unwrap();
    let mut checked = 0;
    for e in &entries {
        let note = e["note"].as_str().unwrap();
        let c = &e["claimed_by_source"];
        let Some(frame_hex) = e["frame_hex"].as_str() else {
            // The 2019 authentication body without a frame.
            let body = hex::decode(e["body_hex"].as_str().unwrap()).unwrap();
            let hd = Header::v2019(id::AUTHENTICATION, "1", 1);
            let Message::Authentication(a) = Message::decode(&hd, &body).unwrap() else {
                panic!()
            };
            assert_eq!(a.code, c["Code"].as_str().unwrap());
            assert_eq!(a.code.len() as u64, c["CodeLength"].as_u64().unwrap());
            assert_eq!(a.imei.as_deref(), c["IMEI"].as_str());
            assert_eq!(a.software_version.as_deref(), c["SoftwareVersion"].as_str());
            assert_eq!(Message::Authentication(a).encode_body(Layout::V2019), body);
            checked += 1;
            continue;
        };
        let research = &e["research_decoder_result"];
        if research["checksum_ok"] == false {
            // Test7 and Test8: refused for their check code, as the research decoding says.
            let raw = hex::decode(&frame_hex[2..frame_hex.len() - 2]).unwrap();
            let err = decode_frame(&raw).unwrap_err();
            let want =
                u8::from_str_radix(&research["checksum_calc"].as_str().unwrap()[2..], 16).unwrap();
            assert!(
                matches!(err, FrameError::CheckCode { computed, .. } if computed == want),
                "{note}: {err}"
            );
            // The body decoder still keeps the position and the malformed extras raw.
            let loc = &research["location"];
            let l = Location::decode(0x0200, &raw[12..raw.len() - 1]).unwrap();
            assert_eq!(u64::from(l.lat_e6), loc["lat_raw"].as_u64().unwrap());
            assert_eq!(u64::from(l.lon_e6), loc["lon_raw"].as_u64().unwrap());
            assert_eq!(
                u64::from(l.speed_dkmh),
                loc["speed_raw_0.1kmh"].as_u64().unwrap()
            );
            if loc["extras_parsed_to_end"] == false {
                assert!(
                    matches!(l.extras.last(), Some(Extra::Malformed(_))),
                    "{note}"
                );
            }
            checked += 1;
            continue;
        }
        let (hd, m) = decode_hex(frame_hex);
        assert_eq!(format!("0x{:04X}", hd.msg_id), research["msg_id"]);
        if note.contains("QUIRK") || note.contains("same device quirk") {
            assert!(hd.version_flag_without_2019_layout, "{note}");
            assert_eq!(hd.layout, Layout::V2013);
            assert_eq!(hd.phone, "010030000681");
        } else {
            let v2019 = research["version_flag_2019"] == 1;
            assert_eq!(hd.layout == Layout::V2019, v2019, "{note}");
            assert_eq!(hd.phone, research["phone_bcd"].as_str().unwrap(), "{note}");
            assert_eq!(u64::from(hd.serial), research["serial"].as_u64().unwrap());
            if let Some(n) = c["MsgNum"].as_u64() {
                assert_eq!(u64::from(hd.serial), n);
            }
            if let Some(p) = c["TerminalPhoneNo"].as_str() {
                assert_eq!(hd.terminal(), p);
            }
        }
        match m {
            Message::Registration(r) => {
                assert_eq!(u64::from(r.province), c["AreaID"].as_u64().unwrap());
                assert_eq!(u64::from(r.city), c["CityOrCountyId"].as_u64().unwrap());
                assert_eq!(r.maker, c["MakerId"].as_str().unwrap());
                assert_eq!(r.model, c["TerminalModel"].as_str().unwrap());
                assert_eq!(r.terminal_id, c["TerminalId"].as_str().unwrap());
                assert_eq!(u64::from(r.plate_colour), c["PlateColor"].as_u64().unwrap());
                assert_eq!(r.plate, c["PlateNo"].as_str().unwrap());
                if let Some(v) = c["ProtocolVersion"].as_u64() {
                    assert_eq!(u64::from(hd.protocol_version), v);
                }
            }
            Message::Authentication(a) if hd.version_flag_without_2019_layout => {
                // Test5_3, forced-2013 decoding: serial 2306, code "J10030000681".
                assert_eq!(hd.serial, 2306);
                assert_eq!(a.code, "J10030000681");
            }
            Message::Authentication(a) => assert_eq!(a.code, c["Code"].as_str().unwrap()),
            Message::Heartbeat => {}
            Message::Location(l) if hd.version_flag_without_2019_layout => {
                // Test5_4, the reference's forced-2013 decoding (its note).
                assert_eq!(hd.serial, 2318);
                assert_eq!((l.alarm, l.status), (0, 0x000C_0003));
                assert_eq!((l.lat(), l.lon()), (40.670063, 122.4523));
                assert_eq!((l.altitude_m, l.speed_kmh(), l.heading), (4, 86.7, 215));
                assert_eq!(local_time(&l.time), "2021-06-25 15:57:39");
                assert_eq!(
                    extra_ids(&l),
                    vec![0x01, 0x05, 0x24, 0x2A, 0x2B, 0x30, 0x31, 0x5F]
                );
                assert!(
                    matches!(&l.extras[1], Extra::Unknown { id: 5, value } if value.len() == 40)
                );
            }
            Message::Location(l) => {
                let loc = &research["location"];
                assert_eq!(u64::from(l.alarm), loc["alarm_flag"].as_u64().unwrap());
                assert_eq!(u64::from(l.status), loc["status"].as_u64().unwrap());
                assert_eq!(l.lat(), loc["lat_deg"].as_f64().unwrap());
                assert_eq!(l.lon(), loc["lon_deg"].as_f64().unwrap());
                assert_eq!(u64::from(l.altitude_m), loc["altitude_m"].as_u64().unwrap());
                assert_eq!(l.speed_kmh(), loc["speed_kmh"].as_f64().unwrap());
                assert_eq!(u64::from(l.heading), loc["direction_deg"].as_u64().unwrap());
                assert_eq!(l.time.to_string(), loc["time_bcd_gmt8"].as_str().unwrap());
                let want: Vec<u8> = loc["extras"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| u8::from_str_radix(&x["id"].as_str().unwrap()[2..], 16).unwrap())
                    .collect();
                assert_eq!(extra_ids(&l), want);
                if let Some(a) = c["AlarmFlag"].as_u64() {
                    assert_eq!(u64::from(l.alarm), a);
                    assert_eq!(u64::from(l.status), c["StatusFlag"].as_u64().unwrap());
                    assert_eq!(u64::from(l.lat_e6), c["Lat"].as_u64().unwrap());
                    assert_eq!(u64::from(l.lon_e6), c["Lng"].as_u64().unwrap());
                    assert_eq!(u64::from(l.altitude_m), c["Altitude"].as_u64().unwrap());
                    assert_eq!(u64::from(l.speed_dkmh), c["Speed"].as_u64().unwrap());
                    assert_eq!(u64::from(l.heading), c["Direction"].as_u64().unwrap());
                    assert_eq!(local_time(&l.time), c["GPSTime"].as_str().unwrap());
                    assert_eq!(
                        l.extras[0],
                        Extra::Mileage(c["Mileage_0x01"].as_u64().unwrap() as u32)
                    );
                    assert_eq!(
                        l.extras[1],
                        Extra::Fuel(c["Oil_0x02"].as_u64().unwrap() as u16)
                    );
                }
            }
            other => panic!("{note}: {other:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, entries.len());
}

// ------------------------------------------------------ makeclan/xtream-codec (Mulan PSL v2)

fn check_location_claim(l: &Location, c: &Value) {
    assert_eq!(u64::from(l.alarm), c["alarmFlag"].as_u64().unwrap());
    assert_eq!(u64::from(l.status), c["status"].as_u64().unwrap());
    assert_eq!(u64::from(l.lat_e6), c["latitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.lon_e6), c["longitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.altitude_m), c["altitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.speed_dkmh), c["speed"].as_u64().unwrap());
    assert_eq!(u64::from(l.heading), c["direction"].as_u64().unwrap());
    assert_eq!(local_time(&l.time), c["time"].as_str().unwrap());
}

#[test]
fn xtream_codec_frames() {
    let doc: Value = serde_json::from_str(&data("xtream_codec_jt808_frames.json")).unwrap();
    let mut supported_seen = 0;
    for f in doc["frames"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let v = &f["verified_by_research_decoder"];
        let (hd, m) = decode_hex(f["hex"].as_str().unwrap());
        // Every frame, supported or not: the header as the research decoder read it.
        assert_eq!(format!("0x{:04X}", hd.msg_id), v["msg_id"], "{name}");
        assert_eq!(hd.layout == Layout::V2019, v["version_flag_2019"] == 1);
        assert_eq!(hd.phone, v["phone_bcd"].as_str().unwrap());
        assert_eq!(u64::from(hd.serial), v["serial"].as_u64().unwrap());
        if !supported(hd.msg_id) {
            assert!(matches!(m, Message::Other { .. }));
            continue;
        }
        supported_seen += 1;
        let c = &f["claimed_body"];
        match (name, m) {
            ("BuiltinMessage0200Sample2", Message::Location(l)) => {
                // The claimed body belongs to another entry; the research decoding's values.
                let loc = &v["location"];
                assert_eq!((l.alarm, l.status), (123, 222));
                assert_eq!((l.lat_e6, l.lon_e6), (31_000_562, 121_451_372));
                assert_eq!(l.lat(), loc["lat_deg"].as_f64().unwrap());
                assert_eq!(l.lon(), loc["lon_deg"].as_f64().unwrap());
                assert_eq!((l.altitude_m, l.speed_dkmh, l.heading), (666, 78, 0));
                assert_eq!(local_time(&l.time), "2014-10-21 19:51:09");
                let want: Vec<u8> = loc["extras"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| u8::from_str_radix(&x["id"].as_str().unwrap()[2..], 16).unwrap())
                    .collect();
                assert_eq!(extra_ids(&l), want);
                let adas = l.active_safety().next().expect("the 0x64 item");
                assert_eq!(adas.kind, ActiveSafetyKind::Adas);
                assert_eq!((adas.alarm_id, adas.flag), (0xde, 0xdf));
                assert_eq!((adas.event_type, adas.level), (0x6f, 0x03));
            }
            (_, Message::Location(l)) => {
                check_location_claim(&l, c);
                // status 22 has the south bit: the sign is applied.
                assert_eq!(l.lat(), v["location"]["lat_deg"].as_f64().unwrap());
                assert!(l.extras.contains(&Extra::Mileage(
                    c["extraItems"]["1"].as_u64().unwrap() as u32
                )));
                assert!(l
                    .extras
                    .contains(&Extra::Fuel(c["extraItems"]["2"].as_u64().unwrap() as u16)));
            }
            (_, Message::LocationBatch(b)) => {
                assert_eq!(b.items.len() as u64, c["count"].as_u64().unwrap());
                assert_eq!(u64::from(b.kind), c["type"].as_u64().unwrap());
                for (l, ci) in b.items.iter().zip(c["itemList"].as_array().unwrap()) {
                    check_location_claim(l, &ci["locationData"]);
                }
            }
            (_, Message::PlatformResponse(g)) => {
                let (s, i) = if name == "BuiltinMessage0001" {
                    ("serverFlowId", "serverMessageId")
                } else {
                    ("clientFlowId", "clientMessageId")
                };
                assert_eq!(u64::from(g.serial), c[s].as_u64().unwrap());
                assert_eq!(u64::from(g.msg_id), c[i].as_u64().unwrap());
                assert_eq!(u64::from(g.result), c["result"].as_u64().unwrap());
            }
            (_, Message::RegistrationResponse(r)) => {
                assert_eq!(u64::from(r.serial), c["clientFlowId"].as_u64().unwrap());
                assert_eq!(u64::from(r.result), c["result"].as_u64().unwrap());
                assert_eq!(r.auth_code.as_deref(), c["authCode"].as_str());
            }
            (_, Message::Heartbeat | Message::Logout) => {}
            (_, Message::Registration(r)) => {
                assert_eq!(u64::from(r.province), c["provinceId"].as_u64().unwrap());
                assert_eq!(u64::from(r.city), c["cityId"].as_u64().unwrap());
                assert_eq!(r.maker, c["manufacturerId"].as_str().unwrap());
                assert_eq!(r.model, c["terminalType"].as_str().unwrap());
                assert_eq!(r.terminal_id, c["terminalId"].as_str().unwrap());
                assert_eq!(u64::from(r.plate_colour), c["color"].as_u64().unwrap());
                assert_eq!(r.plate, c["carIdentifier"].as_str().unwrap());
            }
            (_, Message::Authentication(a)) => {
                assert_eq!(a.code, c["authenticationCode"].as_str().unwrap());
                assert_eq!(a.imei.as_deref(), c["imei"].as_str());
                assert_eq!(
                    a.software_version.as_deref(),
                    c["softwareVersion"]
                        .as_str()
                        .map(|s| s.trim_end_matches('\0'))
                );
            }
            (_, Message::DriverIdentity(d)) => {
                assert_eq!(u64::from(d.status), c["status"].as_u64().unwrap());
                assert_eq!(local_time(&d.time), c["time"].as_str().unwrap());
                assert_eq!(d.ic_result.map(u64::from), c["icCardReadResult"].as_u64());
                let dr = d.driver.unwrap();
                assert_eq!(dr.name, c["driverName"].as_str().unwrap());
                assert_eq!(dr.licence, c["professionalLicenseNo"].as_str().unwrap());
                assert_eq!(
                    dr.authority,
                    c["certificateAuthorityName"].as_str().unwrap()
                );
                assert_eq!(
                    dr.expiry,
                    c["certificateExpiresDate"]
                        .as_str()
                        .unwrap()
                        .replace('-', "")
                );
                assert_eq!(dr.id_card.as_deref(), c["driverIdCardNo"].as_str());
            }
            (name, m) => panic!("{name}: {m:?}"),
        }
    }
    assert_eq!(supported_seen, 15, "0x0704, 2 x 0x0200, 3 x 0x8001, 0x8100, 0x0002, 0x0003, 2 x 0x0100, 2 x 0x0102, 2 x 0x0702");
}

// --------------------------------------------------------- yezhihao/jt808-server (Apache-2.0)

#[test]
fn yezhihao_frames_all_verify() {
    let mut n = 0;
    let mut supported_n = 0;
    for line in data("yezhihao_JT808_frames.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let (hd, m) = decode_hex(line);
        n += 1;
        if supported(hd.msg_id) {
            supported_n += 1;
        } else {
            assert!(matches!(m, Message::Other { .. }));
        }
    }
    assert_eq!(n, 96);
    assert_eq!(
        supported_n, 14,
        "0x0001, 0x0002, 0x0100, 0x0102, 0x0200, 0x0702, 0x0704 in two editions"
    );
}

/// (hex, json) pairs of the unit-test record. Its first part writes `hex1 ...`, `json1 {...`;
/// its second part a bare hex line followed by the JSON object.
fn record_pairs() -> Vec<(String, Value)> {
    let text = data("yezhihao_unit_test_record_hex_json.txt");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let h = l
            .trim_start_matches("hex1 ")
            .trim_start_matches("hex2 ")
            .trim();
        if !h.starts_with("7e") || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut json = String::new();
        for j in lines.by_ref() {
            json.push_str(j.trim_start_matches("json1 ").trim_start_matches("json2 "));
            json.push('\n');
            if j == "}" {
                break;
            }
        }
        out.push((h.to_string(), serde_json::from_str(&json).unwrap()));
    }
    out
}

fn check_record_location(l: &Location, j: &Value) {
    assert_eq!(u64::from(l.alarm), j["warnBit"].as_u64().unwrap());
    assert_eq!(u64::from(l.status), j["statusBit"].as_u64().unwrap());
    assert_eq!(u64::from(l.lat_e6), j["latitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.lon_e6), j["longitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.altitude_m), j["altitude"].as_u64().unwrap());
    assert_eq!(u64::from(l.speed_dkmh), j["speed"].as_u64().unwrap());
    assert_eq!(u64::from(l.heading), j["direction"].as_u64().unwrap());
    assert_eq!(
        l.time
            .local()
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        j["deviceTime"].as_str().unwrap()
    );
    let Some(attrs) = j["attributes"].as_object() else {
        return;
    };
    assert_eq!(attrs.len(), l.extras.len());
    for e in &l.extras {
        let a = &attrs[&e.id().unwrap().to_string()];
        let n = |k: &str| a[k].as_u64().unwrap();
        match e {
            Extra::Mileage(v) | Extra::ExtendedSignals(v) | Extra::Analog(v) => {
                assert_eq!(u64::from(*v), a.as_u64().unwrap())
            }
            Extra::Fuel(v) | Extra::RecorderSpeed(v) | Extra::IoStatus(v) => {
                assert_eq!(u64::from(*v), a.as_u64().unwrap())
            }
            Extra::SignalStrength(v) | Extra::Satellites(v) => {
                assert_eq!(u64::from(*v), a.as_u64().unwrap())
            }
            Extra::OverspeedArea { kind, area_id } => {
                assert_eq!(
                    (u64::from(*kind), area_id.map(u64::from)),
                    (n("areaType"), Some(n("areaId")))
                )
            }
            Extra::AreaRoute {
                kind,
                area_id,
                direction,
            } => assert_eq!(
                (u64::from(*kind), u64::from(*area_id), u64::from(*direction)),
                (n("areaType"), n("areaId"), n("direction"))
            ),
            Extra::RouteTime {
                route_id,
                drive_time_s,
                result,
            } => assert_eq!(
                (
                    u64::from(*route_id),
                    u64::from(*drive_time_s),
                    u64::from(*result)
                ),
                (n("areaId"), n("driveTime"), n("result"))
            ),
            Extra::ActiveSafety(s) => {
                assert_eq!(u64::from(s.alarm_id), n("id"));
                assert_eq!(u64::from(s.flag), n("state"));
                if s.kind != ActiveSafetyKind::Tyre {
                    assert_eq!(u64::from(s.event_type), n("type"));
                }
                if matches!(s.kind, ActiveSafetyKind::Adas | ActiveSafetyKind::Dsm) {
                    assert_eq!(u64::from(s.level), n("level"));
                }
                assert_eq!(u64::from(s.speed_kmh), n("speed"));
                assert_eq!(u64::from(s.altitude_m), n("altitude"));
                assert_eq!(u64::from(s.lat_e6), n("latitude"));
                assert_eq!(u64::from(s.lon_e6), n("longitude"));
                assert_eq!(u64::from(s.vehicle_status), n("statusBit"));
                assert_eq!(
                    s.time
                        .local()
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string(),
                    a["alarmTime"].as_str().unwrap()
                );
            }
            Extra::Unknown {
                id: 0x04 | 0x06,
                value,
            } => {
                assert_eq!(
                    u64::from(u16::from_be_bytes([value[0], value[1]])),
                    a.as_u64().unwrap()
                )
            }
            Extra::Unknown { id: 0x05, value } => {
                let want: Vec<u8> = a["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u8)
                    .collect();
                assert_eq!(value, &want);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn yezhihao_unit_test_record() {
    let mut checked = 0;
    for (hex, j) in record_pairs() {
        let (hd, m) = decode_hex(&hex);
        assert_eq!(u64::from(hd.msg_id), j["messageId"].as_u64().unwrap());
        assert_eq!(
            u64::from(hd.protocol_version),
            j["protocolVersion"].as_u64().unwrap()
        );
        let client = j["clientId"].as_str().unwrap();
        assert!(hd.phone == client || hd.terminal() == client, "{client}");
        assert_eq!(u64::from(hd.serial), j["serialNo"].as_u64().unwrap());
        if !supported(hd.msg_id) {
            continue;
        }
        let s = |k: &str| j[k].as_str().unwrap().to_string();
        let n = |k: &str| j[k].as_u64().unwrap();
        match m {
            Message::PlatformResponse(g) | Message::TerminalResponse(g) => assert_eq!(
                (
                    u64::from(g.serial),
                    u64::from(g.msg_id),
                    u64::from(g.result)
                ),
                (
                    n("responseSerialNo"),
                    n("responseMessageId"),
                    n("resultCode")
                )
            ),
            Message::Heartbeat => {}
            Message::Registration(r) => {
                assert_eq!(
                    (u64::from(r.province), u64::from(r.city)),
                    (n("provinceId"), n("cityId"))
                );
                assert_eq!(
                    (r.maker, r.model, r.terminal_id),
                    (s("makerId"), s("deviceModel"), s("deviceId"))
                );
                assert_eq!(
                    (u64::from(r.plate_colour), r.plate),
                    (n("plateColor"), s("plateNo"))
                );
            }
            Message::Authentication(a) => {
                assert_eq!(a.code, s("token"));
                assert_eq!(a.imei.as_deref(), j["imei"].as_str());
                assert_eq!(a.software_version.as_deref(), j["softwareVersion"].as_str());
            }
            Message::Location(l) => check_record_location(&l, &j),
            Message::LocationBatch(b) => {
                assert_eq!(
                    (b.items.len() as u64, u64::from(b.kind)),
                    (n("total"), n("type"))
                );
                for (l, ji) in b.items.iter().zip(j["items"].as_array().unwrap()) {
                    check_record_location(l, ji);
                }
            }
            Message::DriverIdentity(d) => {
                assert_eq!(u64::from(d.status), n("status"));
                assert_eq!(d.time.to_string(), s("dateTime"));
                assert_eq!(d.ic_result.map(u64::from), Some(n("cardStatus")));
                let dr = d.driver.unwrap();
                assert_eq!((dr.name, dr.licence), (s("name"), s("licenseNo")));
                assert_eq!(
                    (dr.authority, dr.expiry),
                    (s("institution"), s("licenseValidPeriod"))
                );
                assert_eq!(dr.id_card.as_deref(), j["idCard"].as_str());
            }
            Message::RegistrationResponse(r) => {
                assert_eq!(
                    (u64::from(r.serial), u64::from(r.result)),
                    (n("responseSerialNo"), n("resultCode"))
                );
                assert_eq!(r.auth_code.unwrap(), s("token"));
            }
            other => panic!("{other:?}"),
        }
        checked += 1;
    }
    // First part: 0x8001, 0x0002, 0x0100, 0x0102, 0x0200 (twice), 0x0702, 0x0704, 0x8100 in
    // two editions, each pair twice (36); second part: the supported ones of JT808.txt (28).
    assert_eq!(checked, 64);
}

#[test]
fn yezhihao_tjsatl_dsm_fatigue() {
    let (hd, m) = decode_hex(data("yezhihao_TJSATL_frame.txt").trim());
    assert_eq!(hd.terminal(), "40853598950");
    let Message::Location(l) = m else { panic!() };
    let dsm = l.active_safety().next().expect("a 0x65 item");
    assert_eq!(dsm.kind, ActiveSafetyKind::Dsm);
    assert_eq!((dsm.event_type, dsm.level), (1, 1), "fatigue, first level");
    assert_eq!((dsm.flag, dsm.alarm_id), (1, 0x0832_2ccf));
    assert_eq!(
        (dsm.lat_e6, dsm.lon_e6),
        (31_235_963, 121_388_280),
        "Shanghai"
    );
    assert_eq!(dsm.time.to_string(), "210429120639");
    assert_eq!(dsm.ident.len(), 16);
    assert_eq!(local_time(&l.time), "2021-04-29 12:06:41");
}
