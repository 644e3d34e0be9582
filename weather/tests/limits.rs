//! What the CAP parser refuses besides the reference files: sizes, depths, shapes.

mod common;

use common::*;
use weather::{parse_cap, CapError, CapLimits, WeatherConfig};

fn orange() -> String {
    String::from_utf8(data("cn_rainstorm_orange_410500.xml")).unwrap()
}

fn refuse(doc: &str) -> CapError {
    parse_cap(doc.as_bytes(), &WeatherConfig::default().cap).expect_err(doc)
}

#[test]
fn size_is_checked_before_anything_else() {
    let limits = CapLimits {
        max_document_bytes: 1024,
        ..CapLimits::default()
    };
    let doc = orange();
    assert_eq!(
        parse_cap(doc.as_bytes(), &limits).unwrap_err(),
        CapError::TooLarge {
            size: doc.len(),
            limit: 1024
        }
    );
}

#[test]
fn depth_and_element_count_are_bounded() {
    let deep = format!("{}{}", "<x xmlns=\"urn:e\">".repeat(40), "</x>".repeat(40));
    let doc = orange().replace(
        "<scope>Public</scope>",
        &format!("<scope>Public</scope>{deep}"),
    );
    assert!(matches!(refuse(&doc), CapError::Limit(m) if m.contains("deeper")));
    let many = "<x/>".repeat(50_001);
    let doc = orange().replacen("<area>", &format!("{many}<area>"), 1);
    assert!(matches!(refuse(&doc), CapError::Limit(m) if m.contains("elements")));
    let limits = CapLimits {
        max_info_blocks: 1,
        ..CapLimits::default()
    };
    assert!(
        matches!(parse_cap(orange().as_bytes(), &limits), Err(CapError::Limit(m)) if m.contains("<info>"))
    );
}

#[test]
fn a_billion_laughs_is_just_a_dtd() {
    let doc = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol2;</identifier></alert>"#;
    assert_eq!(refuse(doc), CapError::HasDtd);
}

#[test]
fn not_cap_documents() {
    assert!(
        matches!(refuse("<feed xmlns=\"http://www.w3.org/2005/Atom\"/>"), CapError::NotCap(m) if m.contains("<feed>"))
    );
    assert!(matches!(refuse("<alert/>"), CapError::NotCap(m) if m.contains("no CAP namespace")));
    assert!(
        matches!(refuse("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.0\"/>"), CapError::NotCap(m) if m.contains("unsupported namespace"))
    );
    assert!(matches!(refuse(""), CapError::NotCap(_)));
    assert!(matches!(refuse("   "), CapError::NotCap(_)));
}

#[test]
fn malformed_xml() {
    let doc = orange();
    let cut = &doc[..doc.len() / 2];
    assert!(matches!(refuse(cut), CapError::Xml(_)), "truncated");
    assert!(
        matches!(
            refuse(&doc.replace("</headline>", "</headlin>")),
            CapError::Xml(_)
        ),
        "mismatched end tag"
    );
    assert!(
        matches!(refuse(&format!("{doc}<alert/>")), CapError::Xml(m) if m.contains("after the root"))
    );
    assert!(
        matches!(refuse(&doc.replace("<scope>", "<x:scope>").replace("</scope>", "</x:scope>")), CapError::Xml(m) if m.contains("prefix"))
    );
}

#[test]
fn field_errors_name_the_field() {
    let doc = orange();
    let e = refuse(&doc.replace("<status>Actual</status>", "<status>Real</status>"));
    assert!(e.to_string().starts_with("<status>"), "{e}");
    let e = refuse(&doc.replace(
        "<sent>2026-07-28T10:00:00+08:00</sent>",
        "<sent>2026-07-28T10:00:00</sent>",
    ));
    assert!(
        e.to_string().contains("<sent>") && e.to_string().contains("zone"),
        "{e}"
    );
    let e = refuse(&doc.replacen("<event>暴雨橙色预警</event>", "", 1));
    assert_eq!(
        e,
        CapError::Missing {
            element: "event",
            context: " in <info> #1".into()
        }
    );
    let e = refuse(&doc.replace(
        "<identifier>41050041600000_20260728100000</identifier>",
        "<identifier>  </identifier>",
    ));
    assert_eq!(
        e,
        CapError::Missing {
            element: "identifier",
            context: String::new()
        }
    );
    let e = refuse(&doc.replacen("</areaDesc>", "</areaDesc><polygon>1,2 3,4</polygon>", 1));
    assert!(
        e.to_string()
            .contains("<polygon> in <area> #1 of <info> #1"),
        "{e}"
    );
    let e = refuse(&doc.replacen("</areaDesc>", "</areaDesc><circle>36,114</circle>", 1));
    assert!(
        matches!(
            e,
            CapError::Invalid {
                element: "circle",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse(&doc.replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>"));
    assert!(
        matches!(
            e,
            CapError::Missing {
                element: "references",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn cdata_comments_and_foreign_elements_are_handled() {
    let doc = orange()
        .replace("<headline>安阳市气象台发布暴雨橙色预警信号</headline>", "<headline><![CDATA[安阳市<气象台>]]>发布&amp;预警</headline>")
        .replacen("<scope>Public</scope>", "<scope>Public</scope><!-- comment --><ext:x xmlns:ext=\"urn:e\"><identifier>evil</identifier></ext:x>", 1);
    let a = alert(doc.as_bytes());
    assert_eq!(
        a.identifier, "41050041600000_20260728100000",
        "a foreign <identifier> is not the alert's"
    );
    assert_eq!(
        a.infos[0].headline.as_deref(),
        Some("安阳市<气象台>发布&预警")
    );
}
