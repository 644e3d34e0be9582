#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod message;
mod number;

pub use message::message_text;
pub use number::num;
