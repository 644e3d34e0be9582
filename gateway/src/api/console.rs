//! The control-room console: the static files of `dashboards/console/` (plain HTML, CSS and
//! JavaScript, no build step, nothing fetched from outside), compiled into the binary and
//! served at `/` (the page) and `/console/{file}` (its assets). They are public: they hold no
//! data, and every call they make to `/api/v1/...` goes through the access check like any
//! other client's. Each answer carries its content type, `Cache-Control: no-cache` with an
//! `ETag` (the files are not versioned by name, so a browser revalidates and gets a 304 while
//! the binary is the same), and a content security policy that lets the page reach its own
//! origin only.

use super::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// One file of the console.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../../dashboards/console/", $name)),
        }
    };
}

/// Every file of the console; `index.html` is the page at `/`.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("console.js", "text/javascript; charset=utf-8"),
];

/// What the page may load and reach: its own origin, nothing else (no CDN, fonts or tiles).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The entity tag of each asset (FNV-1a of its bytes), computed once.
fn etag(i: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = a.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{h:016x}\"")
            })
            .collect()
    });
    &tags[i]
}

fn serve(i: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let tag = etag(i);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.name == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}

/// `GET /`: the page.
pub(super) async fn page(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /console/{file}`: one asset; an unknown name is the API's JSON 404.
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.name == file) {
        Some(i) => serve(i, &headers),
        None => ApiError(StatusCode::NOT_FOUND, format!("no console file {file}")).into_response(),
    }
}

/// The page and its assets together, in bytes (the console must stay light: under 300 KB).
pub fn weight() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_weigh_under_300_kb() {
        assert!(
            weight() < 300 * 1000,
            "the console weighs {} bytes",
            weight()
        );
    }

    #[test]
    fn the_page_names_only_assets_that_are_served_and_nothing_outside() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for a in &ASSETS[1..] {
            assert!(page.contains(&format!("/console/{}", a.name)), "{}", a.name);
        }
        for a in ASSETS {
            // The SVG namespace is a name, not an address the page reaches.
            let text = std::str::from_utf8(a.bytes)
                .unwrap()
                .replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
                "{} reaches outside",
                a.name
            );
        }
    }

    #[test]
    fn an_unchanged_asset_is_a_304() {
        let mut h = HeaderMap::new();
        let first = serve(1, &h);
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        h.insert(header::IF_NONE_MATCH, first.headers()[header::ETAG].clone());
        assert_eq!(serve(1, &h).status(), StatusCode::NOT_MODIFIED);
    }
}
