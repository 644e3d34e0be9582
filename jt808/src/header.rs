//! The message header, in both layouts.
//!
//! | field | 2011/2013 | 2019 |
//! | --- | --- | --- |
//! | message id | WORD | WORD |
//! | properties | WORD: bits 0-9 body length, 10-12 encryption, 13 sub-packaged, 14 version flag (0) | the same, version flag 1 |
//! | protocol version | - | BYTE (1 for the 2019 edition) |
//! | terminal phone | BCD[6] | BCD[10] |
//! | serial | WORD | WORD |
//! | package total, package number | WORD, WORD when sub-packaged | the same |
//!
//! Some terminals set the version flag but send the 2013 layout (no protocol-version byte,
//! BCD[6] phone). The layouts differ by five bytes, so the frame's length tells them apart:
//! such a header decodes as [`Layout::V2013`] with [`Header::version_flag_without_2019_layout`].

use crate::error::FrameError;
use crate::wire::{bcd_digits, bcd_encode, hex};

/// The header layout (and so the edition of the bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// JT/T 808-2011 and -2013: BCD[6] phone, no protocol version.
    V2013,
    /// JT/T 808-2019: protocol-version byte, BCD[10] phone.
    V2019,
}

/// Which package of a sub-packaged message this frame carries (`index` counts from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Package {
    pub total: u16,
    pub index: u16,
}

/// A message header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub msg_id: u16,
    pub layout: Layout,
    /// The 2019 protocol version byte (0 in the 2013 layout).
    pub protocol_version: u8,
    /// The terminal set the 2019 version flag but sent the 2013 layout.
    pub version_flag_without_2019_layout: bool,
    /// Properties bits 10-12 (0: not encrypted; bit 10: RSA).
    pub encryption: u8,
    /// Properties bit 15 (reserved), kept so a header encodes back to the same bytes.
    pub reserved_bit: bool,
    /// Every BCD digit of the terminal phone: 12 (2013 layout) or 20 (2019 layout).
    pub phone: String,
    pub serial: u16,
    pub package: Option<Package>,
}

impl Header {
    /// A 2013-layout header.
    pub fn v2013(msg_id: u16, terminal: &str, serial: u16) -> Header {
        Header {
            msg_id,
            layout: Layout::V2013,
            protocol_version: 0,
            version_flag_without_2019_layout: false,
            encryption: 0,
            reserved_bit: false,
            phone: bcd_digits(&bcd_encode(terminal, 6)).expect("digits"),
            serial,
            package: None,
        }
    }

    /// A 2019-layout header with protocol version 1.
    pub fn v2019(msg_id: u16, terminal: &str, serial: u16) -> Header {
        Header {
            msg_id,
            layout: Layout::V2019,
            protocol_version: 1,
            version_flag_without_2019_layout: false,
            encryption: 0,
            reserved_bit: false,
            phone: bcd_digits(&bcd_encode(terminal, 10)).expect("digits"),
            serial,
            package: None,
        }
    }

    /// The terminal number: the phone's digits with leading zeros dropped (`"0"` if all zero).
    pub fn terminal(&self) -> &str {
        let t = self.phone.trim_start_matches('0');
        if t.is_empty() {
            "0"
        } else {
            t
        }
    }

    /// The header of a platform message to the terminal that sent `self`: the same layout,
    /// protocol version and phone, not sub-packaged, not encrypted. A terminal that set the
    /// version flag on a 2013 layout is answered in the 2013 layout without the flag.
    pub fn reply(&self, msg_id: u16, serial: u16) -> Header {
        Header {
            msg_id,
            layout: self.layout,
            protocol_version: self.protocol_version,
            version_flag_without_2019_layout: false,
            encryption: 0,
            reserved_bit: false,
            phone: self.phone.clone(),
            serial,
            package: None,
        }
    }

    /// Decode the header at the start of `content` (a frame without flags and check code);
    /// returns it and its length. The rest of `content` must be exactly the declared body.
    pub fn decode(content: &[u8]) -> Result<(Header, usize), FrameError> {
        if content.len() < 12 {
            return Err(FrameError::TooShort {
                len: content.len() + 1,
            });
        }
        let msg_id = u16::from_be_bytes([content[0], content[1]]);
        let props = u16::from_be_bytes([content[2], content[3]]);
        let body_len = usize::from(props & 0x03FF);
        let encryption = ((props >> 10) & 0x07) as u8;
        let sub = props & 0x2000 != 0;
        let flag = props & 0x4000 != 0;
        let extra = if sub { 4 } else { 0 };
        let len13 = 12 + extra;
        let len19 = 17 + extra;
        let layout = if flag && content.len() == len19 + body_len {
            Layout::V2019
        } else if content.len() == len13 + body_len {
            Layout::V2013
        } else {
            let header = if flag { len19 } else { len13 };
            return Err(FrameError::Length {
                declared: body_len,
                actual: content.len().saturating_sub(header),
            });
        };
        let (protocol_version, phone_bytes, mut pos) = match layout {
            Layout::V2019 => (content[4], &content[5..15], 15),
            Layout::V2013 => (0, &content[4..10], 10),
        };
        let phone = bcd_digits(phone_bytes).ok_or_else(|| FrameError::Phone {
            hex: hex(phone_bytes),
        })?;
        let serial = u16::from_be_bytes([content[pos], content[pos + 1]]);
        pos += 2;
        let package = if sub {
            let total = u16::from_be_bytes([content[pos], content[pos + 1]]);
            let index = u16::from_be_bytes([content[pos + 2], content[pos + 3]]);
            pos += 4;
            if total == 0 || index == 0 || index > total {
                return Err(FrameError::PackageNumber { index, total });
            }
            Some(Package { total, index })
        } else {
            None
        };
        if encryption != 0 {
            return Err(FrameError::Encrypted(encryption));
        }
        Ok((
            Header {
                msg_id,
                layout,
                protocol_version,
                version_flag_without_2019_layout: flag && layout == Layout::V2013,
                encryption,
                reserved_bit: props & 0x8000 != 0,
                phone,
                serial,
                package,
            },
            pos,
        ))
    }

    /// The header's bytes for a body of `body_len` bytes (at most 1023).
    pub fn encode(&self, body_len: u16) -> Vec<u8> {
        let mut props = body_len & 0x03FF;
        props |= u16::from(self.encryption & 0x07) << 10;
        if self.package.is_some() {
            props |= 0x2000;
        }
        if self.layout == Layout::V2019 || self.version_flag_without_2019_layout {
            props |= 0x4000;
        }
        if self.reserved_bit {
            props |= 0x8000;
        }
        let mut out = Vec::with_capacity(21);
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        out.extend_from_slice(&props.to_be_bytes());
        match self.layout {
            Layout::V2019 => {
                out.push(self.protocol_version);
                out.extend_from_slice(&bcd_encode(&self.phone, 10));
            }
            Layout::V2013 => out.extend_from_slice(&bcd_encode(&self.phone, 6)),
        }
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(p) = self.package {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
        out
    }
}
