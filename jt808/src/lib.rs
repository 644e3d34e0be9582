#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod error;
pub mod frame;
pub mod header;
pub mod location;
pub mod message;
pub mod subpackage;
pub mod wire;

pub use error::{BodyError, FrameError, ReassemblyError};
pub use frame::{
    check_code, decode_frame, encode_frame, encode_packages, escape, unescape, EncodeError, Frame,
    FrameSplitter, MAX_BODY,
};
pub use header::{Header, Layout, Package};
pub use location::{ActiveSafety, ActiveSafetyKind, Extra, Location, TyreEvent};
pub use message::{
    platform_response, registration_response, Authentication, DriverDetails, DriverIdentity,
    GeneralResponse, LocationBatch, Message, Registration, RegistrationResponse,
};
pub use subpackage::Reassembler;
pub use wire::BcdTime;
