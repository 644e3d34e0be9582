//! The CSV export of incidents, streamed and capped, with formula cells neutralised.

use super::*;
use presentation::{severity_word, state_word, Language, Presentation};

/// One CSV cell. Text that a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return) gets a leading `'`; numbers stay numbers.
pub(super) fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// The header row of the CSV export, in the reader's language, after the byte-order mark
/// that makes Excel on Chinese Windows read UTF-8.
pub(super) fn csv_header(lang: Language) -> &'static str {
    match lang {
        Language::ZhCn => "\u{FEFF}编号,站点,站点名称,区域代码,区域名称,规则,测点,采集终端,级别,状态,数值,阈值,报警时间,确认时间,确认人,恢复时间,关闭时间,关闭人,处置说明,告警信息\n",
        Language::En => "\u{FEFF}id,site,site_name,region,region_name,rule,point,agent,severity,state,value,threshold,raised_at,acked_at,acked_by,cleared_at,closed_at,closed_by,note,message\n",
    }
}

/// A site's name and region (code and name), as the export shows them.
pub(super) type SiteLabels = std::collections::HashMap<String, [String; 3]>;

/// The labels of every site the gateway knows.
pub(super) fn site_labels(live: &Live) -> SiteLabels {
    live.sites
        .iter()
        .map(|(id, s)| {
            let region = s.info.region.as_ref();
            let labels = [
                s.info.name.clone().unwrap_or_default(),
                region.map(|r| r.to_string()).unwrap_or_default(),
                region
                    .and_then(|r| telemetry::regions::full_name(r.as_str()))
                    .unwrap_or_default(),
            ];
            (id.to_string(), labels)
        })
        .collect()
}

/// One row: times in the configured zone (Beijing time by default), severity and state in
/// the reader's words.
pub(super) fn csv_row(i: &telemetry::Incident, p: &Presentation, sites: &SiteLabels) -> String {
    let t = |v: &Option<telemetry::Timestamp>| v.map(|t| p.time(&t)).unwrap_or_default();
    let none = [String::new(), String::new(), String::new()];
    let [site_name, region, region_name] = sites.get(i.site.as_str()).unwrap_or(&none);
    let row = [
        i.id.clone(),
        i.site.to_string(),
        site_name.clone(),
        region.clone(),
        region_name.clone(),
        i.rule.clone(),
        i.point.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        i.agent.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        severity_word(i.severity, p.language).to_string(),
        state_word(i.state, p.language).to_string(),
        i.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        i.threshold.map(|v| v.to_string()).unwrap_or_default(),
        p.time(&i.raised_at),
        t(&i.acked_at),
        i.acked_by.clone().unwrap_or_default(),
        t(&i.cleared_at),
        t(&i.closed_at),
        i.closed_by.clone().unwrap_or_default(),
        i.note.clone().unwrap_or_default(),
        i.message.clone(),
    ];
    csv_line(&row)
}

/// One CSV line of cells, each neutralised and quoted as [`csv_field`] does.
pub(super) fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// `GET /api/v1/incidents.csv?since=&until=&site=&state=&severity=&rule=&limit=`: incidents
/// raised in a period, oldest first, as CSV (UTF-8 with a byte-order mark and a header row in
/// the `[presentation]` language, times in its zone), streamed page by page.
/// At most `http.csv_row_cap` rows (or `limit`, if smaller); the response states the cap in
/// `X-HRS-Row-Cap`: an export of exactly that many rows may go on from its last `raised_at`.
pub(super) async fn incidents_csv(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let seen = visible(&s, &caller);
    let cap = q
        .limit
        .unwrap_or(s.limits.csv_row_cap)
        .clamp(1, s.limits.csv_row_cap);
    const PAGE: i64 = 1000;
    let mut filter = incident_filter(&seen, &q, None, PAGE)?;
    filter.ascending = true;
    // The first page before the answer starts, so a store error is still a clean 503.
    let first = s.store.incidents(&filter).await?;
    let store = s.store.clone();
    let presentation = Arc::new(s.presentation.clone());
    let sites = Arc::new(site_labels(&s.live.read().expect("live lock")));
    let body = stream::unfold(
        (Some(first), filter, 0i64, true),
        move |(page, mut filter, sent, head)| {
            let store = store.clone();
            let (presentation, sites) = (presentation.clone(), sites.clone());
            async move {
                if head {
                    let chunk =
                        Ok::<_, std::io::Error>(csv_header(presentation.language).to_string());
                    return Some((chunk, (page, filter, sent, false)));
                }
                if sent >= cap {
                    return None;
                }
                let page = match page {
                    Some(p) => p,
                    None => match store.incidents(&filter).await {
                        Ok(p) => p,
                        Err(e) => {
                            // The answer has started: end it, and say why in the log.
                            tracing::error!(error = %e, "CSV export cut short by a store error");
                            return None;
                        }
                    },
                };
                if page.is_empty() {
                    return None;
                }
                let take = (cap - sent).min(page.len() as i64) as usize;
                let mut chunk = String::new();
                for i in &page[..take] {
                    chunk.push_str(&csv_row(i, &presentation, &sites));
                }
                if let Some(last) = page.last() {
                    filter.after = Some((last.raised_at.timestamp_millis(), last.id.clone()));
                }
                let more = page.len() as i64 == filter.limit;
                let next = if more { None } else { Some(Vec::new()) };
                Some((Ok(chunk), (next, filter, sent + take as i64, false)))
            }
        },
    );
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"incidents.csv\"",
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-hrs-row-cap", HeaderValue::from(cap));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("+86 138"), "'+86 138");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("-cmd|' /C calc'!A0"), "'-cmd|' /C calc'!A0");
        // Numbers stay numbers.
        assert_eq!(csv_field("-1.5"), "-1.5");
        assert_eq!(csv_field("+2"), "+2");
        assert_eq!(csv_field("1.3"), "1.3");
        // Quoting as before.
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=\"x\",y"), "\"'=\"\"x\"\",y\"");
        assert_eq!(csv_field("瓦斯超限"), "瓦斯超限");
    }
}
