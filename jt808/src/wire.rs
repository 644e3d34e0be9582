//! Big-endian fields, BCD and GBK strings: the building blocks of JT/T 808 bodies.

use crate::error::BodyError;
use chrono::{FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Reads fields off a body, naming the message and field when it runs short.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    msg_id: u16,
}

impl<'a> Reader<'a> {
    pub fn new(msg_id: u16, buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            msg_id,
        }
    }
    pub fn msg_id(&self) -> u16 {
        self.msg_id
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BodyError> {
        if self.remaining() < n {
            return Err(BodyError::TooShort {
                msg_id: self.msg_id,
                field,
                need: n,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
    pub fn u8(&mut self, field: &'static str) -> Result<u8, BodyError> {
        Ok(self.bytes(1, field)?[0])
    }
    pub fn u16(&mut self, field: &'static str) -> Result<u16, BodyError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, field: &'static str) -> Result<u32, BodyError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A fixed-width GBK string padded with 0x00.
    pub fn gbk_fixed(&mut self, n: usize, field: &'static str) -> Result<String, BodyError> {
        Ok(gbk_decode(self.bytes(n, field)?))
    }
    /// A GBK string preceded by its length in one byte.
    pub fn gbk_len8(&mut self, field: &'static str) -> Result<String, BodyError> {
        let n = self.u8(field)? as usize;
        self.gbk_fixed(n, field)
    }
    pub fn bcd(&mut self, n: usize, field: &'static str) -> Result<String, BodyError> {
        let b = self.bytes(n, field)?;
        bcd_digits(b).ok_or_else(|| BodyError::Invalid {
            msg_id: self.msg_id,
            field,
            reason: format!("{} is not BCD", hex(b)),
        })
    }
}

/// Writes fields of a body.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// A GBK string cut (at a character boundary) or padded with 0x00 to `n` bytes.
    pub fn gbk_fixed(&mut self, s: &str, n: usize) -> &mut Self {
        let mut b = gbk_encode_within(s, n);
        b.resize(n, 0);
        self.buf.extend_from_slice(&b);
        self
    }
    /// A GBK string preceded by its length in one byte (cut at a character boundary to at
    /// most 255 bytes).
    pub fn gbk_len8(&mut self, s: &str) -> &mut Self {
        let b = gbk_encode_within(s, 255);
        self.buf.push(b.len() as u8);
        self.buf.extend_from_slice(&b);
        self
    }
    /// Decimal digits as BCD of `n` bytes, left-padded with zeros (extra leading digits are cut).
    pub fn bcd(&mut self, digits: &str, n: usize) -> &mut Self {
        self.buf.extend_from_slice(&bcd_encode(digits, n));
        self
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Decode GBK (GB18030 in practice, a superset) bytes, trimming 0x00 padding on both sides.
pub fn gbk_decode(b: &[u8]) -> String {
    let start = b.iter().position(|&c| c != 0).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != 0).map_or(start, |e| e + 1);
    let (s, _, _) = encoding_rs::GBK.decode(&b[start..end]);
    s.into_owned()
}

/// Encode text as GBK. A character GBK cannot carry becomes an HTML numeric character
/// reference (`&#NNNN;`, what `encoding_rs` writes), never an error.
pub fn gbk_encode(s: &str) -> Vec<u8> {
    let (b, _, _) = encoding_rs::GBK.encode(s);
    b.into_owned()
}

/// Encode text as GBK in at most `max` bytes, cut before the first character that does not
/// fit whole (a cut inside a two-byte character would make the field undecodable).
pub fn gbk_encode_within(s: &str, max: usize) -> Vec<u8> {
    let all = gbk_encode(s);
    if all.len() <= max {
        return all;
    }
    let mut out = Vec::with_capacity(max);
    let mut tmp = [0u8; 4];
    for c in s.chars() {
        let b = gbk_encode(c.encode_utf8(&mut tmp));
        if out.len() + b.len() > max {
            break;
        }
        out.extend_from_slice(&b);
    }
    out
}

/// The decimal digits of BCD bytes; `None` if a nibble is above 9.
pub fn bcd_digits(b: &[u8]) -> Option<String> {
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        let (hi, lo) = (x >> 4, x & 0x0F);
        if hi > 9 || lo > 9 {
            return None;
        }
        s.push(char::from(b'0' + hi));
        s.push(char::from(b'0' + lo));
    }
    Some(s)
}

/// `digits` (decimal, non-digits ignored) as `n` BCD bytes, left-padded with zeros; when
/// there are more digits than fit, the leading ones are cut.
pub fn bcd_encode(digits: &str, n: usize) -> Vec<u8> {
    let d: Vec<u8> = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| c - b'0')
        .collect();
    let want = n * 2;
    let d: Vec<u8> = if d.len() >= want {
        d[d.len() - want..].to_vec()
    } else {
        let mut v = vec![0; want - d.len()];
        v.extend(d);
        v
    };
    d.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// Lowercase hex of bytes (for messages).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A JT/T 808 time: BCD `YYMMDDhhmmss`, Beijing time (GMT+8), years 2000-2099.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BcdTime(pub [u8; 6]);

impl BcdTime {
    /// The wall-clock time it names, or `None` when it is not a valid BCD date and time (all
    /// zeros is what terminals send before they have a time).
    pub fn local(&self) -> Option<NaiveDateTime> {
        let d = bcd_digits(&self.0)?;
        let n = |i: usize| d[i..i + 2].parse::<u32>().ok();
        NaiveDate::from_ymd_opt(2000 + n(0)? as i32, n(2)?, n(4)?)?.and_hms_opt(
            n(6)?,
            n(8)?,
            n(10)?,
        )
    }
    /// The instant it names (GMT+8 to UTC).
    pub fn utc(&self) -> Option<chrono::DateTime<Utc>> {
        let local = self.local()?;
        let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
        beijing
            .from_local_datetime(&local)
            .single()
            .map(|t| t.with_timezone(&Utc))
    }
    /// The BCD form of a Beijing wall-clock time (years 2000-2099; others are cut to two digits).
    pub fn from_local(t: NaiveDateTime) -> BcdTime {
        use chrono::{Datelike, Timelike};
        let s = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}",
            t.year().rem_euclid(100),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let b = bcd_encode(&s, 6);
        BcdTime([b[0], b[1], b[2], b[3], b[4], b[5]])
    }
    /// The BCD form of an instant, in Beijing time.
    pub fn from_utc(t: chrono::DateTime<Utc>) -> BcdTime {
        let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
        Self::from_local(t.with_timezone(&beijing).naive_local())
    }
    pub fn read(r: &mut Reader<'_>, field: &'static str) -> Result<BcdTime, BodyError> {
        let b = r.bytes(6, field)?;
        Ok(BcdTime([b[0], b[1], b[2], b[3], b[4], b[5]]))
    }
}

impl std::fmt::Display for BcdTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_both_ways() {
        assert_eq!(
            bcd_encode("13800000001", 6),
            [0x01, 0x38, 0x00, 0x00, 0x00, 0x01]
        );
        assert_eq!(bcd_digits(&[0x01, 0x38]).unwrap(), "0138");
        assert_eq!(bcd_digits(&[0x1A]), None);
        assert_eq!(bcd_encode("123", 1), [0x23]);
    }

    #[test]
    fn time_is_beijing() {
        let t = BcdTime([0x18, 0x07, 0x15, 0x10, 0x10, 0x10]);
        assert_eq!(t.utc().unwrap().to_rfc3339(), "2018-07-15T02:10:10+00:00");
        assert_eq!(BcdTime::from_utc(t.utc().unwrap()), t);
        assert_eq!(BcdTime([0; 6]).utc(), None);
        assert_eq!(BcdTime([0x18, 0x13, 0x01, 0, 0, 0]).utc(), None);
    }

    #[test]
    fn gbk_is_cut_at_a_character_boundary() {
        // 19 ASCII bytes and a two-byte character do not fit 20 bytes: the character goes.
        let mut w = Writer::new();
        w.gbk_fixed("1234567890123456789张", 20);
        assert_eq!(gbk_decode(&w.buf), "1234567890123456789");
        let b = gbk_encode_within("张张", 3);
        assert_eq!(gbk_decode(&b), "张");
        // A character GBK cannot carry becomes a reference, which is never cut in two bytes.
        assert_eq!(gbk_encode_within("\u{FFFD}", 4), b"");
    }

    #[test]
    fn gbk_trims_padding() {
        assert_eq!(gbk_decode(&[0xD4, 0xC1, 0x41, 0, 0]), "粤A");
        assert_eq!(gbk_decode(&[0, 0x41, 0]), "A");
        assert_eq!(gbk_encode("粤A"), [0xD4, 0xC1, 0x41]);
    }
}
