//! Turning the bytes of an XML document into text, by its byte order mark or the `encoding` of
//! its XML declaration: UTF-8 (the default), ISO-8859-1 / US-ASCII (decoded here, byte for
//! code point), UTF-16 with a byte order mark, and every other WHATWG label `encoding_rs` knows
//! (GBK, GB18030, Big5, windows-1252 ...). Malformed input is refused, never replaced.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Why the bytes of a document could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("unsupported encoding {0:?}")]
    Unsupported(String),
    #[error("the document is not valid {encoding}{at}")]
    Malformed { encoding: String, at: String },
}

/// Decode an XML document to text. Returns the text without any byte order mark.
pub fn decode_xml(bytes: &[u8]) -> Result<Cow<'_, str>, EncodingError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        let (enc, bom_len) = Encoding::for_bom(bytes).expect("checked BOM");
        return with_encoding(enc, &bytes[bom_len..]);
    }
    match declared_encoding(bytes) {
        None => utf8(bytes),
        Some(label) => {
            let lower = label.to_ascii_lowercase();
            match lower.as_str() {
                "utf-8" | "utf8" => utf8(bytes),
                "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1"
                | "iso-ir-100" | "cp819" | "ibm819" => Ok(Cow::Owned(latin1(bytes))),
                "us-ascii" | "ascii" => {
                    if let Some(at) = bytes.iter().position(|b| !b.is_ascii()) {
                        Err(EncodingError::Malformed {
                            encoding: "US-ASCII".into(),
                            at: format!(" (byte {at})"),
                        })
                    } else {
                        utf8(bytes)
                    }
                }
                _ => match Encoding::for_label(lower.as_bytes()) {
                    // A UTF-16 declaration without a BOM cannot have been read this far as ASCII.
                    Some(enc) if enc.is_ascii_compatible() => with_encoding(enc, bytes),
                    _ => Err(EncodingError::Unsupported(label.chars().take(40).collect())),
                },
            }
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, EncodingError> {
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|e| EncodingError::Malformed {
            encoding: "UTF-8".into(),
            at: format!(" (byte {})", e.valid_up_to()),
        })
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn with_encoding<'a>(
    enc: &'static Encoding,
    bytes: &'a [u8],
) -> Result<Cow<'a, str>, EncodingError> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| EncodingError::Malformed {
            encoding: enc.name().to_string(),
            at: String::new(),
        })
}

/// The `encoding` pseudo-attribute of a leading XML declaration, if there is one.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[5..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    let close = rest.find(quote)?;
    Some(rest[..close].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_forms() {
        assert_eq!(
            declared_encoding(b"<?xml version = '1.0' encoding = 'UTF-8' standalone = 'yes'?>"),
            Some("UTF-8".into())
        );
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"),
            Some("ISO-8859-1".into())
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a/>"), None);
    }

    #[test]
    fn latin1_and_gbk() {
        let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>Usulut\xe1n</a>";
        assert!(decode_xml(doc).unwrap().contains("Usulután"));
        let (gbk, _, _) =
            encoding_rs::GBK.encode("<?xml version=\"1.0\" encoding=\"GBK\"?><a>暴雨橙色预警</a>");
        assert!(decode_xml(&gbk).unwrap().contains("暴雨橙色预警"));
        let (gb, _, _) =
            encoding_rs::GB18030.encode("<?xml version=\"1.0\" encoding=\"GB18030\"?><a>暴雨</a>");
        assert!(decode_xml(&gb).unwrap().contains("暴雨"));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            decode_xml(b"<a>\xff</a>"),
            Err(EncodingError::Malformed { .. })
        ));
        assert!(matches!(
            decode_xml(b"<?xml version=\"1.0\" encoding=\"EBCDIC-9\"?><a/>"),
            Err(EncodingError::Unsupported(_))
        ));
        assert!(matches!(
            decode_xml(b"<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a>\xe1</a>"),
            Err(EncodingError::Malformed { .. })
        ));
        assert_eq!(decode_xml(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a/>".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_xml(&utf16).unwrap(), "<a/>");
    }
}
