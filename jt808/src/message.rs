//! Message bodies: what a monitoring platform receives from terminals, and the answers it
//! sends.

use crate::error::BodyError;
use crate::header::{Header, Layout};
use crate::location::Location;
use crate::wire::{BcdTime, Reader, Writer};

/// Message ids.
pub mod id {
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const LOGOUT: u16 = 0x0003;
    pub const REGISTRATION: u16 = 0x0100;
    pub const AUTHENTICATION: u16 = 0x0102;
    pub const LOCATION: u16 = 0x0200;
    pub const DRIVER_IDENTITY: u16 = 0x0702;
    pub const LOCATION_BATCH: u16 = 0x0704;
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    pub const REGISTRATION_RESPONSE: u16 = 0x8100;
}

/// Results of a general response (0x0001, 0x8001).
pub mod result {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const MESSAGE_ERROR: u8 = 2;
    pub const NOT_SUPPORTED: u8 = 3;
    pub const ALARM_CONFIRMED: u8 = 4;
}

/// Results of a registration response (0x8100).
pub mod registration_result {
    pub const OK: u8 = 0;
    pub const VEHICLE_REGISTERED: u8 = 1;
    pub const NO_SUCH_VEHICLE: u8 = 2;
    pub const TERMINAL_REGISTERED: u8 = 3;
    pub const NO_SUCH_TERMINAL: u8 = 4;
}

/// A general response: terminal (0x0001) or platform (0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneralResponse {
    /// The serial of the message answered.
    pub serial: u16,
    /// The id of the message answered.
    pub msg_id: u16,
    pub result: u8,
}

/// Terminal registration (0x0100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// GB/T 2260 province code (first two digits).
    pub province: u16,
    /// GB/T 2260 city or county code (last four digits).
    pub city: u16,
    /// Maker id: BYTE[5] (2013), BYTE[11] (2019).
    pub maker: String,
    /// Terminal model: BYTE[20] (2013; BYTE[8] in 2011), BYTE[30] (2019).
    pub model: String,
    /// Terminal id: BYTE[7] (2013), BYTE[30] (2019).
    pub terminal_id: String,
    /// Plate colour (JT/T 697.7; 0 when the vehicle has no plate yet, then `plate` is the VIN).
    pub plate_colour: u8,
    pub plate: String,
}

/// Terminal authentication (0x0102).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub code: String,
    /// 2019: BYTE[15].
    pub imei: Option<String>,
    /// 2019: BYTE[20].
    pub software_version: Option<String>,
}

/// A driver's details from the IC card (0x0702 with status 1 and read result 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverDetails {
    pub name: String,
    /// Professional qualification certificate number, STRING[20].
    pub licence: String,
    /// Issuing authority.
    pub authority: String,
    /// Certificate validity, BCD[4] `YYYYMMDD`.
    pub expiry: String,
    /// 2019: the driver's identity card number, STRING[20].
    pub id_card: Option<String>,
}

/// Driver identity report (0x0702).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverIdentity {
    /// 1: card inserted (driver signs in), 2: card removed (driver signs out).
    pub status: u8,
    pub time: BcdTime,
    /// 0 read, 1 key not accepted, 2 card locked, 3 card pulled out, 4 checksum error.
    pub ic_result: Option<u8>,
    pub driver: Option<DriverDetails>,
}

pub const DRIVER_CARD_INSERTED: u8 = 1;
pub const DRIVER_CARD_REMOVED: u8 = 2;

/// Batch location upload (0x0704).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationBatch {
    /// 0 regular batch, 1 blind-area resend (reports held while the link was down).
    pub kind: u8,
    pub items: Vec<Location>,
}

/// Registration response (0x8100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationResponse {
    pub serial: u16,
    pub result: u8,
    /// Only with result 0.
    pub auth_code: Option<String>,
}

/// A decoded message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    TerminalResponse(GeneralResponse),
    Heartbeat,
    Logout,
    Registration(Registration),
    Authentication(Authentication),
    Location(Location),
    LocationBatch(LocationBatch),
    DriverIdentity(DriverIdentity),
    PlatformResponse(GeneralResponse),
    RegistrationResponse(RegistrationResponse),
    /// A message this codec does not decode, its body raw.
    Other {
        msg_id: u16,
        body: Vec<u8>,
    },
}

impl Message {
    pub fn msg_id(&self) -> u16 {
        match self {
            Message::TerminalResponse(_) => id::TERMINAL_RESPONSE,
            Message::Heartbeat => id::HEARTBEAT,
            Message::Logout => id::LOGOUT,
            Message::Registration(_) => id::REGISTRATION,
            Message::Authentication(_) => id::AUTHENTICATION,
            Message::Location(_) => id::LOCATION,
            Message::LocationBatch(_) => id::LOCATION_BATCH,
            Message::DriverIdentity(_) => id::DRIVER_IDENTITY,
            Message::PlatformResponse(_) => id::PLATFORM_RESPONSE,
            Message::RegistrationResponse(_) => id::REGISTRATION_RESPONSE,
            Message::Other { msg_id, .. } => *msg_id,
        }
    }

    /// Decode the body of a (whole, reassembled) message; the header's layout chooses between
    /// the 2013 and 2019 forms.
    pub fn decode(header: &Header, body: &[u8]) -> Result<Message, BodyError> {
        let msg_id = header.msg_id;
        let v2019 = header.layout == Layout::V2019;
        let mut r = Reader::new(msg_id, body);
        let m = match msg_id {
            id::TERMINAL_RESPONSE | id::PLATFORM_RESPONSE => {
                let g = GeneralResponse {
                    serial: r.u16("answer serial")?,
                    msg_id: r.u16("answer id")?,
                    result: r.u8("result")?,
                };
                if msg_id == id::TERMINAL_RESPONSE {
                    Message::TerminalResponse(g)
                } else {
                    Message::PlatformResponse(g)
                }
            }
            id::HEARTBEAT => Message::Heartbeat,
            id::LOGOUT => Message::Logout,
            id::REGISTRATION => {
                let province = r.u16("province")?;
                let city = r.u16("city")?;
                // 2011 bodies have an 8-byte model: told apart by a body too short for 2013.
                let (maker, model, tid) = if v2019 {
                    (11, 30, 30)
                } else if body.len() < 4 + 5 + 20 + 7 + 1 {
                    (5, 8, 7)
                } else {
                    (5, 20, 7)
                };
                let maker = r.gbk_fixed(maker, "maker id")?;
                let model = r.gbk_fixed(model, "terminal model")?;
                let terminal_id = r.gbk_fixed(tid, "terminal id")?;
                let plate_colour = r.u8("plate colour")?;
                let plate = crate::wire::gbk_decode(r.rest());
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
            id::AUTHENTICATION => {
                if v2019 {
                    let code = r.gbk_len8("auth code")?;
                    let imei = r.gbk_fixed(15, "IMEI")?;
                    let software_version = r.gbk_fixed(20, "software version")?;
                    Message::Authentication(Authentication {
                        code,
                        imei: Some(imei),
                        software_version: Some(software_version),
                    })
                } else {
                    Message::Authentication(Authentication {
                        code: crate::wire::gbk_decode(r.rest()),
                        imei: None,
                        software_version: None,
                    })
                }
            }
            id::LOCATION => Message::Location(Location::decode(msg_id, body)?),
            id::LOCATION_BATCH => {
                let count = r.u16("item count")?;
                let kind = r.u8("batch type")?;
                let mut items = Vec::with_capacity(usize::from(count).min(body.len() / 30));
                for _ in 0..count {
                    let len = r.u16("item length")?;
                    let item = r.bytes(usize::from(len), "location item")?;
                    items.push(Location::decode(msg_id, item)?);
                }
                if !r.is_empty() {
                    return Err(BodyError::Invalid {
                        msg_id,
                        field: "item count",
                        reason: format!(
                            "{} bytes follow the {count} items the batch declares",
                            r.remaining()
                        ),
                    });
                }
                Message::LocationBatch(LocationBatch { kind, items })
            }
            id::DRIVER_IDENTITY => {
                let status = r.u8("status")?;
                let time = BcdTime::read(&mut r, "time")?;
                // Card removed: the rest is absent by the standard; some terminals send it anyway.
                let ic_result = if r.is_empty() {
                    None
                } else {
                    Some(r.u8("IC card read result")?)
                };
                let driver = if ic_result == Some(0) && !r.is_empty() {
                    let name = r.gbk_len8("driver name")?;
                    let licence = r.gbk_fixed(20, "licence number")?;
                    let authority = r.gbk_len8("issuing authority")?;
                    let expiry = r.bcd(4, "licence validity")?;
                    let id_card = if v2019 && !r.is_empty() {
                        Some(r.gbk_fixed(20, "identity card number")?)
                    } else {
                        None
                    };
                    Some(DriverDetails {
                        name,
                        licence,
                        authority,
                        expiry,
                        id_card,
                    })
                } else {
                    None
                };
                if !r.is_empty() {
                    return Err(BodyError::Invalid {
                        msg_id,
                        field: "driver identity",
                        reason: format!("{} bytes left over", r.remaining()),
                    });
                }
                Message::DriverIdentity(DriverIdentity {
                    status,
                    time,
                    ic_result,
                    driver,
                })
            }
            id::REGISTRATION_RESPONSE => {
                let serial = r.u16("answer serial")?;
                let result = r.u8("result")?;
                let auth_code =
                    (result == registration_result::OK).then(|| crate::wire::gbk_decode(r.rest()));
                Message::RegistrationResponse(RegistrationResponse {
                    serial,
                    result,
                    auth_code,
                })
            }
            _ => Message::Other {
                msg_id,
                body: body.to_vec(),
            },
        };
        Ok(m)
    }

    /// The body in the form of `layout`'s edition.
    pub fn encode_body(&self, layout: Layout) -> Vec<u8> {
        let v2019 = layout == Layout::V2019;
        let mut w = Writer::new();
        match self {
            Message::TerminalResponse(g) | Message::PlatformResponse(g) => {
                w.u16(g.serial).u16(g.msg_id).u8(g.result);
            }
            Message::Heartbeat | Message::Logout => {}
            Message::Registration(r) => {
                let (maker, model, tid) = if v2019 { (11, 30, 30) } else { (5, 20, 7) };
                w.u16(r.province)
                    .u16(r.city)
                    .gbk_fixed(&r.maker, maker)
                    .gbk_fixed(&r.model, model)
                    .gbk_fixed(&r.terminal_id, tid)
                    .u8(r.plate_colour)
                    .bytes(&crate::wire::gbk_encode(&r.plate));
            }
            Message::Authentication(a) => {
                if v2019 {
                    w.gbk_len8(&a.code)
                        .gbk_fixed(a.imei.as_deref().unwrap_or(""), 15)
                        .gbk_fixed(a.software_version.as_deref().unwrap_or(""), 20);
                } else {
                    w.bytes(&crate::wire::gbk_encode(&a.code));
                }
            }
            Message::Location(l) => l.encode(&mut w),
            Message::LocationBatch(b) => {
                w.u16(b.items.len() as u16).u8(b.kind);
                for l in &b.items {
                    let item = l.to_bytes();
                    w.u16(item.len() as u16).bytes(&item);
                }
            }
            Message::DriverIdentity(d) => {
                w.u8(d.status).bytes(&d.time.0);
                if let Some(res) = d.ic_result {
                    w.u8(res);
                }
                if let Some(dr) = &d.driver {
                    w.gbk_len8(&dr.name)
                        .gbk_fixed(&dr.licence, 20)
                        .gbk_len8(&dr.authority)
                        .bcd(&dr.expiry, 4);
                    if v2019 {
                        w.gbk_fixed(dr.id_card.as_deref().unwrap_or(""), 20);
                    }
                }
            }
            Message::RegistrationResponse(r) => {
                w.u16(r.serial).u8(r.result);
                if let Some(code) = &r.auth_code {
                    w.bytes(&crate::wire::gbk_encode(code));
                }
            }
            Message::Other { body, .. } => {
                w.bytes(body);
            }
        }
        w.into_vec()
    }

    /// The frame of this message under `header` (its id is set from the message).
    pub fn encode_frame(&self, header: &Header) -> Result<Vec<u8>, crate::frame::EncodeError> {
        let mut h = header.clone();
        h.msg_id = self.msg_id();
        crate::frame::encode_frame(&h, &self.encode_body(h.layout))
    }
}

/// The platform general response (0x8001) to the message with `header`.
pub fn platform_response(header: &Header, platform_serial: u16, result: u8) -> Vec<u8> {
    Message::PlatformResponse(GeneralResponse {
        serial: header.serial,
        msg_id: header.msg_id,
        result,
    })
    .encode_frame(&header.reply(id::PLATFORM_RESPONSE, platform_serial))
    .expect("a general response fits one frame")
}

/// The registration response (0x8100) to the registration with `header`; the auth code is
/// sent only with result 0. A code longer than the frame can carry is cut.
pub fn registration_response(
    header: &Header,
    platform_serial: u16,
    result: u8,
    auth_code: &str,
) -> Vec<u8> {
    let mut code = auth_code.to_string();
    code.truncate(512);
    Message::RegistrationResponse(RegistrationResponse {
        serial: header.serial,
        result,
        auth_code: (result == registration_result::OK).then_some(code),
    })
    .encode_frame(&header.reply(id::REGISTRATION_RESPONSE, platform_serial))
    .expect("a registration response with a code of at most 512 bytes fits one frame")
}
