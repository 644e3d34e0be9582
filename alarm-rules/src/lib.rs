#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod api;
pub use api::*;
