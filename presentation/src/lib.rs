#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod message;
mod number;
mod setting;
mod words;

pub use message::message_text;
pub use number::num;
pub use setting::{Language, Presentation};
pub use words::{
    label_word, place_word, severity_word, state_word, warning_kind_word, warning_level_word,
    words_json,
};
