//! Weather and earthquake documents posted to a running gateway over HTTP: the reference CAP
//! files are taken or refused with their reasons, a warning lists the sites it touches, and the
//! MQTT topic carries CAP too.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use system_tests::*;

fn reference(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/cap")
            .join(name),
    )
    .or_else(|_| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/reference/cap")
                .join(name),
        )
    })
    .unwrap_or_else(|e| {
        panic!("reference file {name}: {e} (shared/reference must lie beside the repository)")
    })
}

async fn post(url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(url)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// The Chinese rainstorm warning written for the tests, moved to today.
fn rainstorm_now(identifier: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../weather/tests/data/cn_rainstorm_orange_410500.xml"),
    )
    .unwrap();
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    text.replace("41050041600000_20260728100000", identifier)
        .replace(
            "2026-07-28T10:00:00+08:00",
            &fmt(now - chrono::Duration::minutes(1)),
        )
        .replace(
            "2026-07-29T10:00:00+08:00",
            &fmt(now + chrono::Duration::hours(2)),
        )
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_and_cenc_over_http_and_mqtt() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(tmp.path()).await.unwrap();
    let prefix = format!("w{}/v1", free_port());
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let gw = Proc::spawn(
        "gateway",
        &mut gateway_command(&broker.url(), &prefix, http_port, tmp.path()),
        tmp.path(),
    )
    .unwrap();
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    // Two sites: one under Anyang city (410500), one in Hebi (410600).
    for (site, region) in [("tail-01", "410522"), ("tail-02", "410622")] {
        let birth = json!({"agent": "edge", "site": {"category": "tailings", "region": region},
            "points": [{"point": "WL-1", "quantity": "water_level", "unit": "m"}]});
        publish(
            broker.port,
            &format!("{prefix}/sites/{site}/edge/birth"),
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
    }
    eventually(Duration::from_secs(20), "both sites known", || {
        let http = http.clone();
        async move {
            let (_, v) = get_json(&format!("{http}/api/v1/sites")).await.ok()?;
            (v.as_array()?.len() == 2).then_some(())
        }
    })
    .await
    .unwrap();

    // Every valid reference file is taken (202), whether or not it is still in force.
    for name in [
        "oasis_cap12_appendixA1.xml",
        "oasis_cap12_appendixA2.xml",
        "oasis_cap12_appendixA3.xml",
        "oasis_cap12_appendixA4.xml",
        "ipaws_local_area_emergency_polygon.xml",
        "google_PAAQ_tsunami_cancellation_circle.xml",
        "nws_blizzard_warning_cap11.xml",
        "googlecaplib_canada.cap",
        "googlecaplib_australia.cap",
        "googlecaplib_wcatwc-warning.cap",
        "googlecaplib_earthquake-iso8859-1.cap",
        "googlecaplib_weather.cap",
    ] {
        let (st, body) = post(&format!("{http}/api/v1/weather/cap"), reference(name)).await;
        assert_eq!(st, 202, "{name}: {body}");
    }
    // Refused with the reason.
    let (st, body) = post(
        &format!("{http}/api/v1/weather/cap"),
        reference("googlecaplib_invalid.cap"),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body["error"].as_str().unwrap().contains("scope"), "{body}");
    let (st, body) = post(
        &format!("{http}/api/v1/weather/cap"),
        reference("googlecaplib_xee.cap"),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body["error"].as_str().unwrap().contains("DTD"), "{body}");
    let (st, _) = post(
        &format!("{http}/api/v1/weather/cap"),
        b"not xml at all".to_vec(),
    )
    .await;
    assert_eq!(st, 400);

    // A rainstorm warning for 410500 in force now: listed, touching tail-01 only.
    let (st, body) = post(
        &format!("{http}/api/v1/weather/cap"),
        rainstorm_now("41050041600000_TEST1"),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["outcome"], "activated");
    let (_, list) = get_json(&format!("{http}/api/v1/weather/warnings"))
        .await
        .unwrap();
    let w = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| {
            w["id"]
                .as_str()
                .unwrap()
                .starts_with("41050041600000_TEST1")
        })
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(w["type"], "rainstorm");
    assert_eq!(w["level"], "orange");
    assert_eq!(w["code"], "11B03");
    assert_eq!(w["sites"], json!(["tail-01"]));
    // A repeat is taken, with nothing new.
    let (st, body) = post(
        &format!("{http}/api/v1/weather/cap"),
        rainstorm_now("41050041600000_TEST1"),
    )
    .await;
    assert_eq!(st, 202);
    assert_eq!(body["outcome"], "repeat");

    // The MQTT topic takes CAP too.
    publish(
        broker.port,
        &format!("{prefix}/weather/cap"),
        rainstorm_now("41050041600000_TEST2"),
        false,
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "the warning sent over MQTT",
        || {
            let http = http.clone();
            async move {
                let (_, v) = get_json(&format!("{http}/api/v1/weather/warnings"))
                    .await
                    .ok()?;
                v.as_array()?
                    .iter()
                    .any(|w| {
                        w["id"]
                            .as_str()
                            .is_some_and(|i| i.starts_with("41050041600000_TEST2"))
                    })
                    .then_some(())
            }
        },
    )
    .await
    .unwrap();

    // A CENC earthquake report (Beijing time) near the Hebi site: M5.1 within 100 km.
    let o_time = (chrono::Utc::now() + chrono::Duration::hours(8) - chrono::Duration::minutes(2))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let cenc = json!({"shuju": [{"id": "CC20261128", "M": "5.1", "EPI_LAT": "35.75", "EPI_LON": "114.30", "EPI_DEPTH": "10",
        "LOCATION_C": "河南鹤壁市", "O_TIME": o_time, "AUTO_FLAG": "M"}]});
    let (st, body) = post(
        &format!("{http}/api/v1/weather/cenc"),
        cenc.to_string().into_bytes(),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    let (st, _) = post(
        &format!("{http}/api/v1/weather/cenc"),
        b"{\"shuju\": 5}".to_vec(),
    )
    .await;
    assert_eq!(st, 400);
}

/// A feed polled with conditional requests: the document is fetched, taken, and not fetched
/// again while the feed answers 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_polling_with_conditional_requests() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let served = Arc::new(AtomicUsize::new(0));
    let not_modified = Arc::new(AtomicUsize::new(0));
    let doc = rainstorm_now("41050041600000_FEED1");
    let app = {
        let (served, not_modified) = (served.clone(), not_modified.clone());
        axum::Router::new().route(
            "/cap",
            axum::routing::get(move |headers: HeaderMap| {
                let (served, not_modified, doc) =
                    (served.clone(), not_modified.clone(), doc.clone());
                async move {
                    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some("\"v1\"")
                    {
                        not_modified.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    (
                        [("etag", "\"v1\""), ("content-type", "application/xml")],
                        doc,
                    )
                        .into_response()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tmp = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(tmp.path()).await.unwrap();
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let config = tmp.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!("[[weather_feeds]]\nurl = \"http://127.0.0.1:{feed_port}/cap\"\nkind = \"cap\"\ninterval_ms = 200\ntimeout_ms = 2000\n"),
    )
    .unwrap();
    let gw = Proc::spawn(
        "gateway",
        gateway_command(
            &broker.url(),
            &format!("f{http_port}/v1"),
            http_port,
            tmp.path(),
        )
        .arg("--config")
        .arg(&config),
        tmp.path(),
    )
    .unwrap();
    eventually(Duration::from_secs(30), "the feed's warning listed", || {
        let http = http.clone();
        async move {
            let (_, v) = get_json(&format!("{http}/api/v1/weather/warnings"))
                .await
                .ok()?;
            v.as_array()?
                .iter()
                .any(|w| {
                    w["id"]
                        .as_str()
                        .is_some_and(|i| i.starts_with("41050041600000_FEED1"))
                })
                .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    let nm = not_modified.clone();
    eventually(
        Duration::from_secs(20),
        "conditional requests answered 304",
        || {
            let nm = nm.clone();
            async move { (nm.load(Ordering::SeqCst) >= 3).then_some(()) }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        served.load(Ordering::SeqCst),
        1,
        "the document was fetched once; later polls were conditional"
    );
    let metrics = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hrs_weather_feed_polls_total{outcome=\"taken\"} 1"),
        "{metrics}"
    );
}
