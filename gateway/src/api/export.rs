//! The CSV export of incidents, streamed and capped, with formula cells neutralised.

use super::*;

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

/// The header row of the CSV export.
pub(super) const CSV_HEADER: &str = "id,site,rule,point,agent,severity,state,value,threshold,raised_at,acked_at,acked_by,cleared_at,closed_at,closed_by,note,message\n";

pub(super) fn csv_row(i: &telemetry::Incident) -> String {
    let t = |v: &Option<telemetry::Timestamp>| v.map(|t| format_time(&t)).unwrap_or_default();
    let row = [
        i.id.clone(),
        i.site.to_string(),
        i.rule.clone(),
        i.point.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        i.agent.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        i.severity.to_string(),
        i.state.as_str().to_string(),
        i.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        i.threshold.map(|v| v.to_string()).unwrap_or_default(),
        format_time(&i.raised_at),
        t(&i.acked_at),
        i.acked_by.clone().unwrap_or_default(),
        t(&i.cleared_at),
        t(&i.closed_at),
        i.closed_by.clone().unwrap_or_default(),
        i.note.clone().unwrap_or_default(),
        i.message.clone(),
    ];
    let mut line = row
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// `GET /api/v1/incidents.csv?since=&until=&site=&state=&severity=&rule=&limit=`: incidents
/// raised in a period, oldest first, as CSV (UTF-8 with a header row), streamed page by page.
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
    let body = stream::unfold(
        (Some(first), filter, 0i64, true),
        move |(page, mut filter, sent, head)| {
            let store = store.clone();
            async move {
                if head {
                    let chunk = Ok::<_, std::io::Error>(CSV_HEADER.to_string());
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
                    chunk.push_str(&csv_row(i));
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
