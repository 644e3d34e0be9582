#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod message;
mod number;
mod setting;

pub use message::message_text;
pub use number::num;
pub use setting::{Language, Presentation};
