//! The regulator's figures (issue 26): `GET /api/v1/figures` (JSON) and
//! `GET /api/v1/figures.csv`, for a region (a GB/T 2260 prefix) or a site, over a day, a
//! week or a month of the `[presentation]` time zone (Beijing time by default), in the
//! caller's scope. The numbers come from the store (`store::figures`); here the period is
//! placed, the sites chosen and the answer written.

use super::export::csv_line;
use super::*;
use crate::store::figures::{FigureSet, Figures};
use chrono::{Datelike, NaiveDate, TimeZone};
use presentation::{severity_word, Language, Presentation};
use std::collections::BTreeMap;
use telemetry::{Severity, Timestamp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FiguresQuery {
    /// A GB/T 2260 prefix (2, 4 or 6 digits): its sites.
    region: Option<String>,
    /// One site.
    site: Option<String>,
    /// `day` (default), `week` (Monday to Sunday) or `month`.
    period: Option<String>,
    /// A day of the period, `YYYY-MM-DD` in the presentation zone (default: today).
    date: Option<String>,
}

/// A period of the presentation zone, in UTC.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Period {
    pub kind: &'static str,
    /// Its first day (local).
    pub first: NaiveDate,
    pub from: Timestamp,
    pub until: Timestamp,
}

/// The day, week (Monday first) or month of `date` in the zone of `p`.
pub(super) fn period(p: &Presentation, kind: &str, date: NaiveDate) -> Result<Period, ApiError> {
    let zone: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let (kind, first, next) = match kind {
        "day" => ("day", date, date.succ_opt()),
        "week" => {
            let monday =
                date - chrono::Duration::days(date.weekday().num_days_from_monday() as i64);
            ("week", monday, Some(monday + chrono::Duration::days(7)))
        }
        "month" => {
            let first = date.with_day(1).unwrap_or(date);
            (
                "month",
                first,
                first.checked_add_months(chrono::Months::new(1)),
            )
        }
        other => {
            return Err(bad_request(format!(
                "period {other:?} is not day, week or month"
            )))
        }
    };
    let midnight = |d: NaiveDate| {
        zone.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (Some(from), Some(until)) = (midnight(first), next.and_then(midnight)) else {
        return Err(bad_request("the period lies outside the calendar"));
    };
    Ok(Period {
        kind,
        first,
        from,
        until,
    })
}

/// A site as the figures label it: name, region code, region name.
struct SiteLabel {
    name: Option<String>,
    region: Option<String>,
}

/// What a query asks for: its period, and the sites (in the caller's scope) it covers.
fn resolve(
    s: &AppState,
    caller: &Caller,
    q: &FiguresQuery,
) -> Result<(Period, BTreeMap<String, SiteLabel>), ApiError> {
    if let Some(r) = &q.region {
        if !(matches!(r.len(), 2 | 4 | 6) && r.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad_request(
                "region must be a GB/T 2260 prefix of 2, 4 or 6 digits",
            ));
        }
    }
    let zone: chrono_tz::Tz = s
        .presentation
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let date = match &q.date {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|e| bad_request(format!("date {d:?} is not YYYY-MM-DD: {e}")))?,
        None => s.clock.now().with_timezone(&zone).date_naive(),
    };
    let period = period(&s.presentation, q.period.as_deref().unwrap_or("day"), date)?;
    let live = s.live.read().expect("live lock");
    let seen = Visible::of(caller, &live);
    let sites: BTreeMap<String, SiteLabel> = live
        .sites
        .iter()
        .filter(|(id, _)| seen.sees(id.as_str()))
        .filter(|(id, _)| q.site.as_deref().is_none_or(|want| want == id.as_str()))
        .filter(|(_, site)| {
            q.region.as_deref().is_none_or(|p| {
                site.info
                    .region
                    .as_ref()
                    .is_some_and(|r| r.as_str().starts_with(p))
            })
        })
        .map(|(id, site)| {
            let label = SiteLabel {
                name: site.info.name.clone(),
                region: site.info.region.as_ref().map(|r| r.to_string()),
            };
            (id.to_string(), label)
        })
        .collect();
    if let (Some(want), true) = (&q.site, sites.is_empty()) {
        // Out of scope exactly as unknown.
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no site {want}")));
    }
    Ok((period, sites))
}

/// The figures a query asks for, from the store.
async fn compute(
    s: &AppState,
    caller: &Caller,
    q: &FiguresQuery,
) -> Result<(Period, BTreeMap<String, SiteLabel>, FigureSet), ApiError> {
    let (period, sites) = resolve(s, caller, q)?;
    let ids: BTreeMap<String, String> = sites
        .iter()
        .map(|(id, l)| (id.clone(), l.region.clone().unwrap_or_default()))
        .collect();
    let set = s.store.figures(&ids, period.from, period.until).await?;
    Ok((period, sites, set))
}

fn region_name(code: Option<&str>) -> Option<String> {
    code.and_then(telemetry::regions::full_name)
}

/// `GET /api/v1/figures?region=&site=&period=day|week|month&date=YYYY-MM-DD`.
pub(super) async fn figures(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<FiguresQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (period, labels, set) = compute(&s, &caller, &q).await?;
    let sites: Vec<_> = set
        .sites
        .iter()
        .map(|(id, f)| {
            let label = labels.get(id);
            let region = label.and_then(|l| l.region.clone());
            json!({
                "site": id,
                "name": label.and_then(|l| l.name.clone()),
                "region": region,
                "region_name": region_name(region.as_deref()),
                "figures": f,
            })
        })
        .collect();
    let regions: Vec<_> = set
        .regions
        .iter()
        .map(|(code, f)| {
            json!({"region": code, "region_name": region_name(Some(code)), "figures": f})
        })
        .collect();
    Ok(Json(json!({
        "period": period.kind,
        "date": period.first.to_string(),
        "from": format_time(&period.from),
        "until": format_time(&period.until),
        "time_zone": s.presentation.time_zone,
        "region": q.region,
        "region_name": region_name(q.region.as_deref()),
        "site": q.site,
        "total": set.total,
        "regions": regions,
        "sites": sites,
    })))
}

/// The header of the figures CSV, in the reader's language, after the byte-order mark.
fn csv_header(lang: Language) -> String {
    let severities: Vec<&str> = Severity::ALL
        .iter()
        .map(|s| severity_word(*s, lang))
        .collect();
    let (head, tail) = match lang {
        Language::ZhCn => (
            "站点,站点名称,区域代码,区域名称,开始时间,结束时间,监视时长(秒),在线时长(秒),在线率,应到批次,实到批次,数据完整率,报警总数",
            "已确认数,确认用时中位数(秒),确认用时P90(秒),已关闭数,关闭用时中位数(秒),关闭用时P90(秒),超期督办数,带处置说明关闭数,处置率,各规则报警数,频繁报警原因",
        ),
        Language::En => (
            "site,site_name,region,region_name,from,until,observed_s,online_s,online_rate,batches_expected,batches_received,completeness,incidents",
            "acknowledged,ack_median_s,ack_p90_s,closed,close_median_s,close_p90_s,overdue,closed_with_note,disposal_rate,by_rule,chattering_causes",
        ),
    };
    format!("\u{FEFF}{head},{},{tail}\n", severities.join(","))
}

/// One CSV row of figures: durations in seconds, rates as percentages.
fn csv_row(cells: [String; 6], f: &Figures) -> String {
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let opt_secs = |ms: Option<i64>| ms.map(secs).unwrap_or_default();
    let pct = |r: Option<f64>| r.map(|r| format!("{:.2}%", r * 100.0)).unwrap_or_default();
    let mut row: Vec<String> = cells.into();
    row.extend([
        secs(f.observed_ms),
        secs(f.online_ms),
        pct(f.online_rate),
        f.batches_expected.to_string(),
        f.batches_received.to_string(),
        pct(f.completeness),
        f.incidents.to_string(),
    ]);
    row.extend(Severity::ALL.iter().map(|s| {
        f.by_severity
            .get(s.as_str())
            .copied()
            .unwrap_or(0)
            .to_string()
    }));
    let by_rule: Vec<String> = f.by_rule.iter().map(|(r, n)| format!("{r}:{n}")).collect();
    row.extend([
        f.acknowledged.to_string(),
        opt_secs(f.ack_median_ms),
        opt_secs(f.ack_p90_ms),
        f.closed.to_string(),
        opt_secs(f.close_median_ms),
        opt_secs(f.close_p90_ms),
        f.overdue.to_string(),
        f.closed_with_note.to_string(),
        pct(f.disposal_rate),
        by_rule.join("; "),
        f.chattering_causes.join("; "),
    ]);
    csv_line(&row)
}

/// `GET /api/v1/figures.csv?...`: the same figures as CSV (UTF-8 with a byte-order mark, a
/// header row in the `[presentation]` language, times in its zone): a row per site, one per
/// region of those sites (`小计`), then the total (`合计`).
pub(super) async fn figures_csv(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<FiguresQuery>,
) -> Result<Response, ApiError> {
    let (period, labels, set) = compute(&s, &caller, &q).await?;
    let p = &s.presentation;
    let (from, until) = (p.time(&period.from), p.time(&period.until));
    let mut body = csv_header(p.language);
    for (id, f) in &set.sites {
        let label = labels.get(id);
        let region = label.and_then(|l| l.region.clone());
        let cells = [
            id.clone(),
            label.and_then(|l| l.name.clone()).unwrap_or_default(),
            region.clone().unwrap_or_default(),
            region_name(region.as_deref()).unwrap_or_default(),
            from.clone(),
            until.clone(),
        ];
        body.push_str(&csv_row(cells, f));
    }
    let (subtotal, total) = match p.language {
        Language::ZhCn => ("小计", "合计"),
        Language::En => ("subtotal", "total"),
    };
    for (code, f) in &set.regions {
        let cells = [
            subtotal.to_string(),
            String::new(),
            code.clone(),
            region_name(Some(code)).unwrap_or_default(),
            from.clone(),
            until.clone(),
        ];
        body.push_str(&csv_row(cells, f));
    }
    let cells = [
        total.to_string(),
        String::new(),
        q.region.clone().unwrap_or_default(),
        region_name(q.region.as_deref()).unwrap_or_default(),
        from,
        until,
    ];
    body.push_str(&csv_row(cells, &set.total));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"figures.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_days_weeks_and_months_of_beijing_time() {
        let p = Presentation::default();
        let d = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let day = period(&p, "day", d).ok().unwrap();
        assert_eq!(format_time(&day.from), "2026-12-01T16:00:00.000Z");
        assert_eq!(format_time(&day.until), "2026-12-02T16:00:00.000Z");
        let week = period(&p, "week", d).ok().unwrap();
        assert_eq!(week.first.to_string(), "2026-11-30");
        assert_eq!(format_time(&week.until), "2026-12-06T16:00:00.000Z");
        let month = period(&p, "month", d).ok().unwrap();
        assert_eq!(format_time(&month.from), "2026-11-30T16:00:00.000Z");
        assert_eq!(format_time(&month.until), "2026-12-31T16:00:00.000Z");
        assert!(period(&p, "year", d).is_err());
    }

    #[test]
    fn the_csv_header_is_chinese_first_and_matches_the_rows() {
        let h = csv_header(Language::ZhCn);
        assert!(h.starts_with("\u{FEFF}站点,站点名称"));
        let row = csv_row(Default::default(), &Figures::default());
        assert_eq!(h.split(',').count(), row.split(',').count());
    }
}
