//! Framing: 0x7E flags, escaping (0x7D 0x02 for 0x7E, 0x7D 0x01 for 0x7D), the XOR check
//! code, and a streaming splitter that finds frames in a TCP byte stream.

use crate::error::FrameError;
use crate::header::Header;

/// The flag that opens and closes every frame.
pub const FLAG: u8 = 0x7E;
/// The escape byte.
pub const ESCAPE: u8 = 0x7D;
/// The largest body one frame carries (10 bits of length); longer ones go in sub-packages.
pub const MAX_BODY: usize = 1023;

/// The XOR of every byte: the check code of a frame's header and body.
pub fn check_code(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// Escape a frame's content (header, body, check code): 0x7E -> 0x7D 0x02, 0x7D -> 0x7D 0x01.
pub fn escape(content: &[u8], out: &mut Vec<u8>) {
    for &b in content {
        match b {
            FLAG => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            _ => out.push(b),
        }
    }
}

/// Undo [`escape`]. 0x7D followed by anything but 0x01 or 0x02 is refused.
pub fn unescape(escaped: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == ESCAPE {
            match escaped.get(i + 1) {
                Some(0x01) => out.push(ESCAPE),
                Some(0x02) => out.push(FLAG),
                Some(&byte) => return Err(FrameError::BadEscape { offset: i, byte }),
                None => return Err(FrameError::TruncatedEscape),
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// One decoded frame: its header and its body (unescaped, check code verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub body: Vec<u8>,
}

/// Decode the bytes between two flags (still escaped, without the flags).
pub fn decode_frame(escaped: &[u8]) -> Result<Frame, FrameError> {
    let data = unescape(escaped)?;
    if data.len() < 13 {
        return Err(FrameError::TooShort { len: data.len() });
    }
    let (content, code) = data.split_at(data.len() - 1);
    let computed = check_code(content);
    if computed != code[0] {
        return Err(FrameError::CheckCode {
            found: code[0],
            computed,
        });
    }
    let (header, header_len) = Header::decode(content)?;
    Ok(Frame {
        header,
        body: content[header_len..].to_vec(),
    })
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a body of {len} bytes does not fit one frame (at most {MAX_BODY}); send it in sub-packages")]
    BodyTooLong { len: usize },
}

/// Encode one frame, flags included. The body length in the header is the body's.
pub fn encode_frame(header: &Header, body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if body.len() > MAX_BODY {
        return Err(EncodeError::BodyTooLong { len: body.len() });
    }
    let mut content = header.encode(body.len() as u16);
    content.extend_from_slice(body);
    content.push(check_code(&content));
    let mut out = Vec::with_capacity(content.len() + 8);
    out.push(FLAG);
    escape(&content, &mut out);
    out.push(FLAG);
    Ok(out)
}

/// Encode a body of any length as frames: one frame when it fits, else sub-packages of at
/// most `max_package` body bytes (1..=1023) with serials `header.serial`, `+1`, ...
pub fn encode_packages(
    header: &Header,
    body: &[u8],
    max_package: usize,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let max_package = max_package.clamp(1, MAX_BODY);
    if body.len() <= max_package {
        let mut h = header.clone();
        h.package = None;
        return Ok(vec![encode_frame(&h, body)?]);
    }
    let chunks: Vec<&[u8]> = body.chunks(max_package).collect();
    if chunks.len() > usize::from(u16::MAX) {
        return Err(EncodeError::BodyTooLong { len: body.len() });
    }
    let total = chunks.len() as u16;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut h = header.clone();
            h.serial = header.serial.wrapping_add(i as u16);
            h.package = Some(crate::header::Package {
                total,
                index: i as u16 + 1,
            });
            encode_frame(&h, c)
        })
        .collect()
}

/// Finds frames in a byte stream: feed it what the socket gave ([`FrameSplitter::push`]), take
/// frames out ([`FrameSplitter::next_frame`]) until it says `None`.
///
/// Every 0x7E is a boundary: what lies between two of them is a candidate frame (empty ones
/// are skipped), so a broken frame never swallows the good one after it. Bytes before the
/// first flag are garbage (counted). A candidate that grows beyond `max_frame` escaped bytes
/// without a closing flag is refused once with [`FrameError::TooLong`] and its bytes are
/// skipped up to the next flag; the splitter never holds more than `max_frame` bytes of a
/// partial frame.
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    head: usize,
    scanned: usize,
    in_frame: bool,
    max_frame: usize,
    garbage: u64,
}

impl FrameSplitter {
    /// A splitter that refuses frames longer than `max_frame` bytes (escaped, without flags).
    pub fn new(max_frame: usize) -> Self {
        FrameSplitter {
            buf: Vec::new(),
            head: 0,
            scanned: 0,
            in_frame: false,
            max_frame: max_frame.max(1),
            garbage: 0,
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.head > 0 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes skipped outside any frame so far.
    pub fn garbage_bytes(&self) -> u64 {
        self.garbage
    }

    /// Bytes held for a frame not yet closed.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The next candidate frame (escaped, without flags), an error for one that was refused,
    /// or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            let pending = &self.buf[self.head..];
            if !self.in_frame {
                match pending.iter().position(|&b| b == FLAG) {
                    None => {
                        self.garbage += pending.len() as u64;
                        self.buf.clear();
                        self.head = 0;
                        return None;
                    }
                    Some(p) => {
                        self.garbage += p as u64;
                        self.head += p + 1;
                        self.in_frame = true;
                        self.scanned = 0;
                    }
                }
                continue;
            }
            match pending[self.scanned..].iter().position(|&b| b == FLAG) {
                None => {
                    self.scanned = pending.len();
                    if pending.len() > self.max_frame {
                        let escaped = pending.len();
                        self.buf.clear();
                        self.head = 0;
                        self.in_frame = false;
                        return Some(Err(FrameError::TooLong {
                            escaped,
                            limit: self.max_frame,
                        }));
                    }
                    return None;
                }
                Some(p) => {
                    let end = self.scanned + p;
                    // The closing flag also opens the next frame.
                    let frame = pending[..end].to_vec();
                    self.head += end + 1;
                    self.scanned = 0;
                    if frame.is_empty() {
                        continue;
                    }
                    if frame.len() > self.max_frame {
                        return Some(Err(FrameError::TooLong {
                            escaped: frame.len(),
                            limit: self.max_frame,
                        }));
                    }
                    return Some(Ok(frame));
                }
            }
        }
    }
}
