//! Request signatures: the platform's (`X-HRS-Signature`) and the DingTalk robot's (`sign`).
//! Pure functions of their inputs.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `X-HRS-Signature` of a request: `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn platform_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]))
    )
}

/// Check a platform signature (for receivers and tests); constant-time comparison.
pub fn verify_platform_signature(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// DingTalk robot signature: Base64 of HMAC-SHA256 keyed by the secret over
/// `"{timestamp}\n{secret}"` (timestamp in milliseconds). Not yet URL-encoded.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let text = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac(secret.as_bytes(), &[text.as_bytes()]))
}

/// The robot URL with `timestamp` and `sign` (URL-encoded) appended to its query.
pub fn dingtalk_url(
    url: &str,
    secret: Option<&str>,
    timestamp_ms: i64,
) -> Result<reqwest::Url, url_error::UrlError> {
    let mut u = reqwest::Url::parse(url).map_err(|e| url_error::UrlError(e.to_string()))?;
    if let Some(secret) = secret {
        let sign = dingtalk_sign(secret, timestamp_ms);
        u.query_pairs_mut()
            .append_pair("timestamp", &timestamp_ms.to_string())
            .append_pair("sign", &sign);
    }
    Ok(u)
}

pub mod url_error {
    #[derive(Debug, thiserror::Error)]
    #[error("bad url: {0}")]
    pub struct UrlError(pub String);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_signature_is_hmac_of_timestamp_dot_body() {
        // Reference: RFC 4231 test case 2 shape, computed with `openssl dgst -sha256 -hmac`.
        // printf '%s' '1700000000000.{"a":1}' | openssl dgst -sha256 -hmac 'Jefe'
        let sig = platform_signature("Jefe", "1700000000000", br#"{"a":1}"#);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        // The signed text is exactly timestamp "." body.
        let direct = hex::encode(hmac(b"Jefe", &[b"1700000000000.{\"a\":1}"]));
        assert_eq!(sig, format!("sha256={direct}"));
        assert!(verify_platform_signature(
            "Jefe",
            "1700000000000",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_platform_signature(
            "Jefe",
            "1700000000001",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_platform_signature(
            "jefe",
            "1700000000000",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_platform_signature(
            "Jefe",
            "1700000000000",
            br#"{"a":2}"#,
            &sig
        ));
        assert!(!verify_platform_signature(
            "Jefe",
            "1700000000000",
            br#"{"a":1}"#,
            "md5=00"
        ));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn dingtalk_sign_and_url() {
        let secret = "SECxyz";
        let ts = 1_700_000_000_000i64;
        let sign = dingtalk_sign(secret, ts);
        let expect = base64::engine::general_purpose::STANDARD.encode(hmac(
            secret.as_bytes(),
            &[format!("{ts}\n{secret}").as_bytes()],
        ));
        assert_eq!(sign, expect);
        let url = dingtalk_url(
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            Some(secret),
            ts,
        )
        .unwrap();
        let q: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(q[0], ("access_token".into(), "abc".into()));
        assert_eq!(q[1], ("timestamp".into(), ts.to_string()));
        assert_eq!(q[2], ("sign".into(), sign.clone()));
        // Base64's `+`, `/` and `=` are percent-encoded in the query.
        let raw = url.query().unwrap();
        let raw_sign = raw.split("sign=").nth(1).unwrap();
        assert!(
            !raw_sign.contains('+') && !raw_sign.contains('/') && !raw_sign.contains('='),
            "{raw_sign}"
        );
        let no_secret = dingtalk_url(
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            None,
            ts,
        )
        .unwrap();
        assert_eq!(no_secret.query(), Some("access_token=abc"));
    }
}
