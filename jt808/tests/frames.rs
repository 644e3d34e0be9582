//! Frames built by hand from the standard (JT/T 808-2013 and -2019), checked byte by byte in
//! both directions. Each expected frame below was written field by field from the tables of
//! the standard; the check code is the XOR of the header and body.

use jt808::location::{ALARM_OVERSPEED, STATUS_POSITIONED, STATUS_SOUTH, STATUS_WEST};
use jt808::message::{id, result};
use jt808::*;
use std::time::{Duration, Instant};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Split a whole frame (with flags) and decode it.
fn decode_one(frame: &[u8]) -> (Header, Message) {
    let mut s = FrameSplitter::new(4096);
    s.push(frame);
    let raw = s.next_frame().expect("a frame").expect("well formed");
    assert!(s.next_frame().is_none());
    let f = decode_frame(&raw).expect("decodes");
    let m = Message::decode(&f.header, &f.body).expect("body decodes");
    (f.header, m)
}

#[test]
fn heartbeat_2013_byte_by_byte() {
    let frame = h("7e 0002 0000 013800000001 0001 3b 7e");
    //             flag id  props phone(BCD[6]) serial check flag
    let header = Header::v2013(id::HEARTBEAT, "13800000001", 1);
    assert_eq!(Message::Heartbeat.encode_frame(&header).unwrap(), frame);
    let (hd, m) = decode_one(&frame);
    assert_eq!(hd, header);
    assert_eq!(hd.terminal(), "13800000001");
    assert_eq!(hd.phone, "013800000001");
    assert_eq!(m, Message::Heartbeat);
}

#[test]
fn platform_response_2013_answers_with_the_terminals_header() {
    let heartbeat = Header::v2013(id::HEARTBEAT, "13800000001", 1);
    let frame = h("7e 8001 0005 013800000001 0007 0001 0002 00 b8 7e");
    //                  body 5   phone          serial ans.serial ans.id result
    assert_eq!(platform_response(&heartbeat, 7, result::OK), frame);
    let (hd, m) = decode_one(&frame);
    assert_eq!(
        (hd.msg_id, hd.layout, hd.serial),
        (0x8001, Layout::V2013, 7)
    );
    assert_eq!(
        m,
        Message::PlatformResponse(GeneralResponse {
            serial: 1,
            msg_id: 2,
            result: 0
        })
    );
}

#[test]
fn registration_response_2019() {
    let reg = Header::v2019(id::REGISTRATION, "13800000001", 5);
    let frame = h("7e 8100 4007 01 00000000013800000001 0009 0005 00 41423132 f3 7e");
    //                  flag|7 ver phone (BCD[10])    serial ans.  ok code "AB12"
    assert_eq!(registration_response(&reg, 9, 0, "AB12"), frame);
    let (hd, m) = decode_one(&frame);
    assert_eq!((hd.layout, hd.protocol_version), (Layout::V2019, 1));
    assert_eq!(hd.phone, "00000000013800000001");
    assert_eq!(
        m,
        Message::RegistrationResponse(RegistrationResponse {
            serial: 5,
            result: 0,
            auth_code: Some("AB12".into())
        })
    );
    // A refusal carries no code.
    let refused = registration_response(&reg, 9, 4, "AB12");
    let (_, m) = decode_one(&refused);
    assert_eq!(
        m,
        Message::RegistrationResponse(RegistrationResponse {
            serial: 5,
            result: 4,
            auth_code: None
        })
    );
}

#[test]
fn escaping_of_7e_and_7d_in_the_body() {
    // Answer serial 0x7E7D: the body bytes 7E 7D travel as 7D 02 7D 01.
    let frame = h("7e 8001 0005 013800000001 0000 7d02 7d01 0002 00 bd 7e");
    let mut hb = Header::v2013(id::HEARTBEAT, "13800000001", 0x7E7D);
    hb.serial = 0x7E7D;
    assert_eq!(platform_response(&hb, 0, 0), frame);
    let (_, m) = decode_one(&frame);
    assert_eq!(
        m,
        Message::PlatformResponse(GeneralResponse {
            serial: 0x7E7D,
            msg_id: 2,
            result: 0
        })
    );
    assert_eq!(unescape(&[0x7D, 0x01, 0x7D, 0x02]).unwrap(), [0x7D, 0x7E]);
    assert_eq!(
        unescape(&[0x30, 0x7D, 0x03]),
        Err(FrameError::BadEscape {
            offset: 1,
            byte: 0x03
        })
    );
    assert_eq!(unescape(&[0x7D]), Err(FrameError::TruncatedEscape));
}

fn sydney() -> Location {
    Location {
        alarm: ALARM_OVERSPEED,
        status: STATUS_POSITIONED | STATUS_SOUTH | STATUS_WEST,
        lat_e6: 33_865_142,
        lon_e6: 151_209_290,
        altitude_m: 58,
        speed_dkmh: 1234,
        heading: 270,
        time: BcdTime([0x26, 0x11, 0x28, 0x18, 0x00, 0x00]),
        extras: vec![
            Extra::Mileage(12345),
            Extra::SignalStrength(31),
            Extra::Satellites(12),
            Extra::Unknown {
                id: 0xE0,
                value: vec![0xAB, 0xCD],
            },
        ],
    }
}

#[test]
fn location_report_2013_byte_by_byte() {
    let frame = h(concat!(
        "7e 0200 002c 013800000001 002a",
        " 00000002",      // alarm: overspeed
        " 0000000e",      // status: positioned, south, west
        " 0204bdb6",      // lat 33.865142
        " 0903454a",      // lon 151.209290
        " 003a",          // 58 m
        " 04d2",          // 123.4 km/h
        " 010e",          // 270 degrees
        " 261128180000",  // 2026-11-28 18:00:00 Beijing time
        " 0104 00003039", // mileage 1234.5 km
        " 3001 1f",       // signal 31
        " 3101 0c",       // 12 satellites
        " e002 abcd",     // unknown, kept raw
        " 46 7e"
    ));
    let header = Header::v2013(id::LOCATION, "13800000001", 42);
    let loc = sydney();
    assert_eq!(
        Message::Location(loc.clone())
            .encode_frame(&header)
            .unwrap(),
        frame
    );
    let (_, m) = decode_one(&frame);
    let Message::Location(l) = m else {
        panic!("{m:?}")
    };
    assert_eq!(l, loc);
    assert_eq!((l.lat(), l.lon()), (-33.865142, -151.20929));
    assert_eq!(l.speed_kmh(), 123.4);
    assert!(l.positioned());
    assert_eq!(
        l.time.utc().unwrap().to_rfc3339(),
        "2026-11-28T10:00:00+00:00",
        "GMT+8 to UTC"
    );
}

#[test]
fn version_flag_on_a_2013_layout_is_detected() {
    // The same report with the 2019 flag (0x4000) set but the 2013 layout.
    let frame = h(concat!(
        "7e 0200 402c 013800000001 002a 00000002 0000000e 0204bdb6 0903454a 003a 04d2 010e",
        " 261128180000 0104 00003039 3001 1f 3101 0c e002 abcd 06 7e"
    ));
    let (hd, m) = decode_one(&frame);
    assert_eq!(hd.layout, Layout::V2013);
    assert!(hd.version_flag_without_2019_layout);
    assert_eq!(hd.terminal(), "13800000001");
    assert_eq!(m, Message::Location(sydney()));
    // Encoding the header again gives the same bytes; the answer is plain 2013.
    let mut again = Message::Location(sydney()).encode_frame(&hd).unwrap();
    assert_eq!(again, frame);
    let answer = platform_response(&hd, 1, 0);
    assert_eq!(
        &answer[3..5],
        &[0x00, 0x05],
        "no version flag in the answer"
    );
    again.clear();
}

#[test]
fn registration_2019_byte_by_byte() {
    let frame = h(concat!(
        "7e 0100 4054 01 00000000013800000001 0003",
        " 0029 0500",              // province 41, city 0500
        " 4852530000000000000000", // maker "HRS", BYTE[11]
        " 4a542d53494d000000000000000000000000000000000000000000000000", // model BYTE[30]
        " 543030303030303100000000000000000000000000000000000000000000", // terminal id BYTE[30]
        " 02",                     // yellow plate
        " d4a5453132333435",       // 豫E12345 in GBK
        " 4c 7e"
    ));
    let reg = Registration {
        province: 0x29,
        city: 0x0500,
        maker: "HRS".into(),
        model: "JT-SIM".into(),
        terminal_id: "T0000001".into(),
        plate_colour: 2,
        plate: "豫E12345".into(),
    };
    let header = Header::v2019(id::REGISTRATION, "13800000001", 3);
    assert_eq!(
        Message::Registration(reg.clone())
            .encode_frame(&header)
            .unwrap(),
        frame
    );
    assert_eq!(decode_one(&frame), (header, Message::Registration(reg)));
}

#[test]
fn authentication_both_forms() {
    let f2013 = h("7e 0102 0004 013800000001 0002 41423132 3d 7e");
    let a2013 = Authentication {
        code: "AB12".into(),
        imei: None,
        software_version: None,
    };
    let hd = Header::v2013(id::AUTHENTICATION, "13800000001", 2);
    assert_eq!(
        Message::Authentication(a2013.clone())
            .encode_frame(&hd)
            .unwrap(),
        f2013
    );
    assert_eq!(decode_one(&f2013).1, Message::Authentication(a2013));

    let f2019 = h(concat!(
        "7e 0102 4028 01 00000000013800000001 0004",
        " 04 41423132",                              // code length, code
        " 383630303030303030303030303031",           // IMEI BYTE[15]
        " 312e302e30000000000000000000000000000000", // software version BYTE[20]
        " 5c 7e"
    ));
    let a2019 = Authentication {
        code: "AB12".into(),
        imei: Some("860000000000001".into()),
        software_version: Some("1.0.0".into()),
    };
    let hd = Header::v2019(id::AUTHENTICATION, "13800000001", 4);
    assert_eq!(
        Message::Authentication(a2019.clone())
            .encode_frame(&hd)
            .unwrap(),
        f2019
    );
    assert_eq!(decode_one(&f2019).1, Message::Authentication(a2019));
}

#[test]
fn driver_identity_2013_byte_by_byte() {
    let frame = h(concat!(
        "7e 0702 0030 013800000001 0004",
        " 01 261128080000 00", // card inserted, time, read OK
        " 04 d5c5c8fd",        // name 张三
        " 3431303530303139383030313031313233340000", // licence STRING[20]
        " 0a b5c0c2b7d4cbcae4bed6", // authority 道路运输局
        " 20301231",           // valid to 2030-12-31
        " 5a 7e"
    ));
    let d = DriverIdentity {
        status: 1,
        time: BcdTime([0x26, 0x11, 0x28, 0x08, 0, 0]),
        ic_result: Some(0),
        driver: Some(DriverDetails {
            name: "张三".into(),
            licence: "410500198001011234".into(),
            authority: "道路运输局".into(),
            expiry: "20301231".into(),
            id_card: None,
        }),
    };
    let hd = Header::v2013(id::DRIVER_IDENTITY, "13800000001", 4);
    assert_eq!(
        Message::DriverIdentity(d.clone())
            .encode_frame(&hd)
            .unwrap(),
        frame
    );
    assert_eq!(decode_one(&frame).1, Message::DriverIdentity(d));
}

#[test]
fn sub_packages_reassemble_in_any_order_within_the_bounds() {
    // A 0x0704 of one item whose body is cut in two packages by hand.
    // body: count 1, type 0, item length 28, a location of 28 zero bytes; cut after 20 bytes.
    let p1 = h(concat!(
        "7e 0704 2014 013800000001 0010 0002 0001", // sub-packaged, 20 bytes, package 1 of 2
        " 0001 00 001c 000000000000000000000000000000 01 7e"
    ));
    let p2 = h(concat!(
        "7e 0704 200d 013800000001 0011 0002 0002", // package 2 of 2, serial + 1
        " 00000000000000000000000000 07 7e"
    ));
    let t0 = Instant::now();
    let frames: Vec<Frame> = [&p2, &p1]
        .iter()
        .map(|f| decode_frame(&f[1..f.len() - 1]).unwrap())
        .collect();
    assert_eq!(
        frames[1].header.package,
        Some(Package { total: 2, index: 1 })
    );
    let mut r = Reassembler::new(4, 4096, Duration::from_secs(30));
    assert_eq!(
        r.push(&frames[0].header, frames[0].body.clone(), t0)
            .unwrap(),
        None
    );
    let (hd, body) = r
        .push(&frames[1].header, frames[1].body.clone(), t0)
        .unwrap()
        .expect("complete");
    assert_eq!((hd.serial, hd.package), (0x10, None));
    let mut want = h("0001 00 001c");
    want.extend([0; 28]);
    assert_eq!(body, want);
    assert!(r.is_empty());
    let Message::LocationBatch(b) = Message::decode(&hd, &body).unwrap() else {
        panic!()
    };
    assert_eq!((b.kind, b.items.len(), b.items[0].time.utc()), (0, 1, None));

    // Timeout on the caller's clock.
    let mut r = Reassembler::new(4, 4096, Duration::from_secs(30));
    r.push(&frames[0].header, frames[0].body.clone(), t0)
        .unwrap();
    assert_eq!(r.expire(t0 + Duration::from_secs(29)), 0);
    assert_eq!(r.expire(t0 + Duration::from_secs(30)), 1);
    assert_eq!(r.dropped(), 1);
    // Bounded: a duplicate is refused, bytes beyond the bound are refused.
    let mut r = Reassembler::new(4, 25, Duration::from_secs(30));
    r.push(&frames[0].header, frames[0].body.clone(), t0)
        .unwrap();
    assert!(matches!(
        r.push(&frames[0].header, frames[0].body.clone(), t0),
        Err(ReassemblyError::Duplicate { .. })
    ));
    assert!(matches!(
        r.push(&frames[1].header, frames[1].body.clone(), t0),
        Err(ReassemblyError::TooManyBytes { .. })
    ));
    assert!(r.is_empty());
    // encode_packages cuts a long body the same way.
    let hd = Header::v2013(id::LOCATION_BATCH, "13800000001", 0x10);
    let frames = encode_packages(&hd, &want, 20).unwrap();
    assert_eq!(frames, vec![p1.clone(), p2.clone()]);
}

#[test]
fn splitter_copes_with_partial_frames_garbage_and_oversize() {
    let hb = h("7e 0002 0000 013800000001 0001 3b 7e");
    let mut stream = b"GET / HTTP/1.0\r\n".to_vec();
    stream.extend(&hb);
    stream.extend(h("7e 01 02 03 7e")); // a broken frame between two good ones
    stream.extend(&hb);
    let mut s = FrameSplitter::new(64);
    let mut out = Vec::new();
    for b in &stream {
        // one byte at a time: every partial frame
        s.push(&[*b]);
        while let Some(f) = s.next_frame() {
            out.push(f.map(|raw| decode_frame(&raw)));
        }
    }
    assert_eq!(s.garbage_bytes(), 16);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(matches!(&out[0], Ok(Ok(f)) if f.header.msg_id == 2));
    assert!(matches!(&out[1], Ok(Err(FrameError::TooShort { len: 3 }))));
    assert!(matches!(&out[2], Ok(Ok(f)) if f.header.msg_id == 2));

    // A frame that never closes is refused once, and the splitter holds no more than its bound.
    let mut s = FrameSplitter::new(64);
    s.push(&[0x7E]);
    s.push(&[0x11; 100]);
    assert!(matches!(
        s.next_frame(),
        Some(Err(FrameError::TooLong { limit: 64, .. }))
    ));
    assert_eq!(s.pending_bytes(), 0);
    s.push(&[0x22; 100]);
    assert!(s.next_frame().is_none());
    s.push(&hb);
    assert!(matches!(s.next_frame(), Some(Ok(raw)) if decode_frame(&raw).is_ok()));
    assert!(s.next_frame().is_none());
}

#[test]
fn refusals_name_their_reason() {
    // Wrong check code.
    let e = decode_frame(&h("0002 0000 013800000001 0001 3c")).unwrap_err();
    assert_eq!(
        e,
        FrameError::CheckCode {
            found: 0x3c,
            computed: 0x3b
        }
    );
    assert_eq!(e.reason(), "check_code");
    // Declared body length that the frame does not carry.
    let mut c = h("0002 0001 013800000001 0001");
    c.push(jt808::check_code(&c));
    assert_eq!(decode_frame(&c).unwrap_err().reason(), "length");
    // Phone not BCD.
    let mut c = h("0002 0000 01380000000a 0001");
    c.push(jt808::check_code(&c));
    assert_eq!(decode_frame(&c).unwrap_err().reason(), "header");
    // Encrypted.
    let mut c = h("0002 0400 013800000001 0001");
    c.push(jt808::check_code(&c));
    assert_eq!(decode_frame(&c).unwrap_err().reason(), "encrypted");
    // A body too short for its message.
    let hd = Header::v2013(id::LOCATION, "1", 1);
    assert!(matches!(
        Message::decode(&hd, &[0; 27]),
        Err(BodyError::TooShort { .. })
    ));
    // A body too long for one frame.
    assert!(encode_frame(&hd, &[0; 1024]).is_err());
}
