//! Why a frame or a message body was refused.

/// Why a frame (the bytes between two 0x7E flags) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {escaped} bytes (escaped) exceeds the limit of {limit} bytes")]
    TooLong { escaped: usize, limit: usize },
    #[error("0x7D followed by 0x{byte:02X} at offset {offset} is not an escape (only 0x01 and 0x02 are)")]
    BadEscape { offset: usize, byte: u8 },
    #[error("frame ends inside an escape (0x7D is its last byte)")]
    TruncatedEscape,
    #[error("frame of {len} bytes is shorter than a header and a check code")]
    TooShort { len: usize },
    #[error("check code 0x{found:02X} does not match the XOR of the frame, 0x{computed:02X}")]
    CheckCode { found: u8, computed: u8 },
    #[error("the header declares a body of {declared} bytes, the frame carries {actual} (neither the 2013 nor the 2019 layout fits)")]
    Length { declared: usize, actual: usize },
    #[error("terminal phone {hex} is not BCD")]
    Phone { hex: String },
    #[error("sub-package {index} of {total} is not a valid package number")]
    PackageNumber { index: u16, total: u16 },
    #[error("body encryption {0:#05b} (RSA) is not supported")]
    Encrypted(u8),
}

impl FrameError {
    /// A fixed word for counters: `too_long`, `escape`, `too_short`, `check_code`, `length`,
    /// `header`, `encrypted`.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooLong { .. } => "too_long",
            FrameError::BadEscape { .. } | FrameError::TruncatedEscape => "escape",
            FrameError::TooShort { .. } => "too_short",
            FrameError::CheckCode { .. } => "check_code",
            FrameError::Length { .. } => "length",
            FrameError::Phone { .. } | FrameError::PackageNumber { .. } => "header",
            FrameError::Encrypted(_) => "encrypted",
        }
    }
}

/// Why a message body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "message 0x{msg_id:04X}: body ends at byte {have}, {need} bytes are needed for {field}"
    )]
    TooShort {
        msg_id: u16,
        field: &'static str,
        need: usize,
        have: usize,
    },
    #[error("message 0x{msg_id:04X}: {field}: {reason}")]
    Invalid {
        msg_id: u16,
        field: &'static str,
        reason: String,
    },
}

/// Why a sub-package was not taken into a reassembly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    #[error("too many messages in reassembly at once (limit {limit}); the oldest was dropped")]
    TooManyPartials { limit: usize },
    #[error("reassembly would hold {bytes} bytes, over the limit of {limit}")]
    TooManyBytes { bytes: usize, limit: usize },
    #[error("sub-package {index} of {total} is a duplicate")]
    Duplicate { index: u16, total: u16 },
}
