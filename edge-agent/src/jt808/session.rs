//! The protocol state of one terminal connection, pure: bytes in, steps out. The server does
//! what a step asks (store a registration, check a code, store readings) and asks the session
//! for the answer. No I/O and no clock: `now` is passed in.
//!
//! - Registration (0x0100) -> [`Step::Register`]; the server persists a code and calls
//!   [`Session::registered`] for the 0x8100.
//! - Authentication (0x0102) -> [`Step::Authenticate`]; [`Session::authenticated`] gives the
//!   0x8001 (result 0, or 1 for a wrong code) and marks the terminal authenticated. After
//!   `max_auth_failures` wrong codes the connection is closed.
//! - Location reports (0x0200, 0x0704) and driver identity (0x0702) of an authenticated
//!   terminal -> [`Step::Reports`] / [`Step::Driver`]; [`Session::stored`] gives the 0x8001 once
//!   the readings are stored (result 0) or failed to be (result 1: the terminal sends again).
//! - Messages of a terminal that has not authenticated (with `auth_required`) are answered
//!   0x8001 result 1 and count nothing ([`Step::Unauthenticated`]).
//! - Heartbeat (0x0002) and logout (0x0003) are answered 0x8001 result 0; the terminal's
//!   general response (0x0001) is not answered; any other message is answered result 3 (not
//!   supported).
//! - A frame that does not decode is refused ([`Step::Refused`]) and not answered: its header
//!   cannot be trusted. A body that does not decode is answered result 2 (message error). The
//!   connection goes on either way.
//! - Sub-packages are reassembled (bounded); each package but the last is answered result 0.

use super::config::Jt808Config;
use ::jt808::message::{registration_result, result};
use ::jt808::{
    platform_response, registration_response, DriverIdentity, FrameSplitter, Header, Location,
    Message, Reassembler, Registration,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What the server must do for one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send these bytes (in order with every other answer).
    Answer(Vec<u8>),
    /// A message was decoded (its kind, for counting).
    Received(&'static str),
    /// A frame or body was refused: a fixed reason for the counter and the detail.
    Refused(&'static str, String),
    Register {
        header: Header,
        registration: Registration,
    },
    Authenticate {
        header: Header,
        code: String,
    },
    Reports {
        header: Header,
        terminal: String,
        locations: Vec<Location>,
        blind_area: bool,
    },
    Driver {
        header: Header,
        terminal: String,
        identity: DriverIdentity,
    },
    /// A message of a terminal that has not authenticated; `answer` refuses it.
    Unauthenticated {
        terminal: String,
        answer: Vec<u8>,
    },
    /// Close the connection.
    Close(&'static str),
}

/// The state of one connection.
#[derive(Debug)]
pub struct Session {
    splitter: FrameSplitter,
    reassembler: Reassembler,
    authenticated: HashSet<String>,
    auth_required: bool,
    auth_failures: u32,
    max_auth_failures: u32,
    serial: u16,
}

impl Session {
    pub fn new(cfg: &Jt808Config) -> Session {
        Session {
            splitter: FrameSplitter::new(cfg.max_frame_bytes),
            reassembler: Reassembler::new(
                8,
                cfg.max_reassembly_bytes,
                Duration::from_millis(cfg.reassembly_timeout_ms),
            ),
            authenticated: HashSet::new(),
            auth_required: cfg.auth_required,
            auth_failures: 0,
            max_auth_failures: cfg.max_auth_failures,
            serial: 0,
        }
    }

    fn next_serial(&mut self) -> u16 {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1);
        s
    }

    fn answer(&mut self, header: &Header, res: u8) -> Vec<u8> {
        let serial = self.next_serial();
        platform_response(header, serial, res)
    }

    /// Whether a terminal's reports count on this connection.
    pub fn is_authenticated(&self, terminal: &str) -> bool {
        !self.auth_required || self.authenticated.contains(terminal)
    }

    /// Sub-packaged messages dropped unfinished so far.
    pub fn reassembly_dropped(&self) -> u64 {
        self.reassembler.dropped()
    }

    /// Take bytes from the socket; the steps for every frame they complete.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<Step> {
        self.splitter.push(bytes);
        let mut steps = Vec::new();
        while let Some(candidate) = self.splitter.next_frame() {
            let frame = match candidate.and_then(|raw| ::jt808::decode_frame(&raw)) {
                Ok(f) => f,
                Err(e) => {
                    steps.push(Step::Refused(e.reason(), e.to_string()));
                    continue;
                }
            };
            let last = frame.header.clone();
            let (header, body) = match self.reassembler.push(&frame.header, frame.body, now) {
                Ok(Some(whole)) => whole,
                Ok(None) => {
                    let a = self.answer(&last, result::OK);
                    steps.push(Step::Answer(a));
                    continue;
                }
                Err(e) => {
                    steps.push(Step::Refused("subpackage", e.to_string()));
                    continue;
                }
            };
            // Answers name the frame that completed the message.
            let mut answer_to = header.clone();
            answer_to.serial = last.serial;
            self.message(&answer_to, &body, &mut steps);
            if steps.iter().any(|s| matches!(s, Step::Close(_))) {
                break;
            }
        }
        steps
    }

    fn message(&mut self, header: &Header, body: &[u8], steps: &mut Vec<Step>) {
        let terminal = header.terminal().to_string();
        let msg = match Message::decode(header, body) {
            Ok(m) => m,
            Err(e) => {
                steps.push(Step::Refused("body", e.to_string()));
                let a = self.answer(header, result::MESSAGE_ERROR);
                steps.push(Step::Answer(a));
                return;
            }
        };
        steps.push(Step::Received(kind(&msg)));
        match msg {
            Message::Registration(registration) => steps.push(Step::Register {
                header: header.clone(),
                registration,
            }),
            Message::Authentication(a) => steps.push(Step::Authenticate {
                header: header.clone(),
                code: a.code,
            }),
            Message::TerminalResponse(_) => {}
            _ if !self.is_authenticated(&terminal) => {
                let answer = self.answer(header, result::FAILURE);
                steps.push(Step::Unauthenticated { terminal, answer });
            }
            Message::Heartbeat => {
                let a = self.answer(header, result::OK);
                steps.push(Step::Answer(a));
            }
            Message::Logout => {
                self.authenticated.remove(&terminal);
                let a = self.answer(header, result::OK);
                steps.push(Step::Answer(a));
            }
            Message::Location(l) => steps.push(Step::Reports {
                header: header.clone(),
                terminal,
                locations: vec![l],
                blind_area: false,
            }),
            Message::LocationBatch(b) => steps.push(Step::Reports {
                header: header.clone(),
                terminal,
                locations: b.items,
                blind_area: b.kind == 1,
            }),
            Message::DriverIdentity(identity) => steps.push(Step::Driver {
                header: header.clone(),
                terminal,
                identity,
            }),
            Message::PlatformResponse(_)
            | Message::RegistrationResponse(_)
            | Message::Other { .. } => {
                let a = self.answer(header, result::NOT_SUPPORTED);
                steps.push(Step::Answer(a));
            }
        }
    }

    /// The 0x8100 for a registration: `Ok(code)` registered, `Err(result)` refused (e.g.
    /// [`registration_result::NO_SUCH_TERMINAL`]).
    pub fn registered(&mut self, header: &Header, outcome: Result<&str, u8>) -> Vec<u8> {
        let serial = self.next_serial();
        match outcome {
            Ok(code) => registration_response(header, serial, registration_result::OK, code),
            Err(r) => registration_response(header, serial, r, ""),
        }
    }

    /// The 0x8001 for an authentication whose code was (not) right; and whether to close the
    /// connection (too many wrong codes).
    pub fn authenticated(&mut self, header: &Header, ok: bool) -> (Vec<u8>, bool) {
        if ok {
            self.authenticated.insert(header.terminal().to_string());
            (self.answer(header, result::OK), false)
        } else {
            self.authenticated.remove(header.terminal());
            self.auth_failures += 1;
            (
                self.answer(header, result::FAILURE),
                self.auth_failures >= self.max_auth_failures,
            )
        }
    }

    /// The 0x8001 for reports or a driver identity, once stored (or not).
    pub fn stored(&mut self, header: &Header, ok: bool) -> Vec<u8> {
        self.answer(header, if ok { result::OK } else { result::FAILURE })
    }
}

/// A fixed word per message kind, for counters.
pub fn kind(m: &Message) -> &'static str {
    match m {
        Message::TerminalResponse(_) => "terminal_response",
        Message::Heartbeat => "heartbeat",
        Message::Logout => "logout",
        Message::Registration(_) => "registration",
        Message::Authentication(_) => "authentication",
        Message::Location(_) => "location",
        Message::LocationBatch(_) => "location_batch",
        Message::DriverIdentity(_) => "driver_identity",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::jt808::{Authentication, BcdTime, GeneralResponse};

    fn cfg() -> Jt808Config {
        toml::from_str("listen = \"127.0.0.1:0\"\nsite = \"t\"\nmax_auth_failures = 2").unwrap()
    }

    fn frame(m: &Message, serial: u16) -> Vec<u8> {
        m.encode_frame(&Header::v2013(0, "13800000001", serial))
            .unwrap()
    }

    fn answer_of(bytes: &[u8]) -> GeneralResponse {
        let f = ::jt808::decode_frame(&bytes[1..bytes.len() - 1]).unwrap();
        match Message::decode(&f.header, &f.body).unwrap() {
            Message::PlatformResponse(g) => g,
            m => panic!("{m:?}"),
        }
    }

    fn loc() -> Message {
        Message::Location(Location {
            alarm: 0,
            status: 2,
            lat_e6: 1,
            lon_e6: 1,
            altitude_m: 0,
            speed_dkmh: 0,
            heading: 0,
            time: BcdTime([0x26, 1, 1, 0, 0, 0]),
            extras: vec![],
        })
    }

    #[test]
    fn nothing_counts_before_authentication() {
        let mut s = Session::new(&cfg());
        let now = Instant::now();
        let steps = s.push(&frame(&loc(), 1), now);
        let Step::Unauthenticated { answer, .. } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(answer_of(answer).result, result::FAILURE);
        let auth = Message::Authentication(Authentication {
            code: "x".into(),
            imei: None,
            software_version: None,
        });
        let steps = s.push(&frame(&auth, 2), now);
        let Step::Authenticate { header, code } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(code, "x");
        let (a, close) = s.authenticated(header, false);
        assert_eq!((answer_of(&a).result, close), (result::FAILURE, false));
        let (_, close) = s.authenticated(header, false);
        assert!(close, "max_auth_failures = 2");
        let (a, _) = s.authenticated(header, true);
        assert_eq!(
            answer_of(&a),
            GeneralResponse {
                serial: 2,
                msg_id: 0x0102,
                result: 0
            }
        );
        let steps = s.push(&frame(&loc(), 3), now);
        assert!(
            matches!(&steps[1], Step::Reports { terminal, locations, .. } if terminal == "13800000001" && locations.len() == 1)
        );
    }

    #[test]
    fn malformed_frames_are_refused_and_the_connection_goes_on() {
        let mut s = Session::new(&cfg());
        let now = Instant::now();
        let mut bytes = frame(&Message::Heartbeat, 1);
        let n = bytes.len();
        bytes[n - 2] ^= 0x55; // the check code
        bytes.extend(frame(&Message::Heartbeat, 2));
        let steps = s.push(&bytes, now);
        assert!(
            matches!(steps[0], Step::Refused("check_code", _)),
            "{steps:?}"
        );
        // The heartbeat after it is read (and refused: not authenticated).
        assert!(
            matches!(steps[2], Step::Unauthenticated { .. }),
            "{steps:?}"
        );
        // A body that does not decode is answered "message error".
        let bad = ::jt808::encode_frame(&Header::v2013(0x0200, "13800000001", 9), &[0; 5]).unwrap();
        let steps = s.push(&bad, now);
        assert!(matches!(steps[0], Step::Refused("body", _)));
        let Step::Answer(a) = &steps[1] else { panic!() };
        assert_eq!(answer_of(a).result, result::MESSAGE_ERROR);
    }
}
