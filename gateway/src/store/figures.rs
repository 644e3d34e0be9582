//! The regulator's figures of a period for a set of sites, computed from the store: rows
//! fetched with plain SQL (the same on SQLite and PostgreSQL), every number computed here, in
//! Rust, once (percentiles included), so both stores give the same figures. Definitions are in
//! `docs/contract-notes.md` ("Figures").

use super::history::SiteInterval;
use super::{run, Result, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use telemetry::{Incident, Severity, Timestamp};

/// Up to this many sites are named in the incidents query; a larger set is filtered here.
const MAX_NAMED_SITES: usize = 500;

/// The figures of a set of sites over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Sites the figures cover.
    pub sites: u64,
    /// Time the gateway watched them (summed over the sites).
    pub observed_ms: i64,
    /// Time at least one of a site's agents was online (summed over the sites).
    pub online_ms: i64,
    /// `online_ms / observed_ms`; null when nothing was watched.
    pub online_rate: Option<f64>,
    pub batches_received: i64,
    pub batches_expected: i64,
    /// `batches_received / batches_expected`; null when no batch was expected.
    pub completeness: Option<f64>,
    /// Incidents raised in the period.
    pub incidents: u64,
    /// Of those, per severity (every severity named, 0 included).
    pub by_severity: BTreeMap<String, u64>,
    /// Of those, per rule.
    pub by_rule: BTreeMap<String, u64>,
    /// Of those, acknowledged (by now), and how long it took (raise to acknowledgement).
    pub acknowledged: u64,
    pub ack_median_ms: Option<i64>,
    pub ack_p90_ms: Option<i64>,
    /// Of those, closed (by now), and how long it took (raise to close).
    pub closed: u64,
    pub close_median_ms: Option<i64>,
    pub close_p90_ms: Option<i64>,
    /// Of those, those that became overdue (督办), closed since or not.
    pub overdue: u64,
    /// Of those, closed with a disposal note.
    pub closed_with_note: u64,
    /// `closed_with_note / incidents`; null without incidents.
    pub disposal_rate: Option<f64>,
    /// Causes (`rule site subject`) raised 3 times or more within an hour in the period.
    pub chattering_causes: Vec<String>,
}

/// Figures of the whole set and of each of its sites.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FigureSet {
    pub total: Figures,
    /// Per region (the code each site was counted under).
    pub regions: BTreeMap<String, Figures>,
    pub sites: BTreeMap<String, Figures>,
}

/// The `p`-th percentile (0 < p <= 100) by nearest rank: the smallest value with at least
/// `p` % of the values at or below it. `values` must be sorted. The one percentile of the
/// figures (the median is `percentile(v, 50)`).
pub fn percentile(values: &[i64], p: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = (p as usize * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// What one set of sites gathers before its figures are made.
#[derive(Default)]
struct Tally {
    sites: u64,
    intervals: SiteInterval,
    incidents: Vec<Incident>,
}

impl Tally {
    fn add_interval(&mut self, r: &SiteInterval) {
        let t = &mut self.intervals;
        t.observed_ms += r.observed_ms;
        t.online_ms += r.online_ms;
        t.batches += r.batches;
        t.expected += r.expected;
    }

    fn figures(mut self) -> Figures {
        let iv = &self.intervals;
        let mut f = Figures {
            sites: self.sites,
            observed_ms: iv.observed_ms,
            online_ms: iv.online_ms,
            online_rate: ratio(iv.online_ms, iv.observed_ms),
            batches_received: iv.batches,
            batches_expected: iv.expected,
            completeness: ratio(iv.batches, iv.expected),
            incidents: self.incidents.len() as u64,
            by_severity: Severity::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect(),
            ..Figures::default()
        };
        self.incidents
            .sort_by(|a, b| (a.raised_at, &a.id).cmp(&(b.raised_at, &b.id)));
        let since = |t: Option<Timestamp>, i: &Incident| {
            t.map(|t| (t - i.raised_at).num_milliseconds().max(0))
        };
        let mut ack = Vec::new();
        let mut close = Vec::new();
        let mut raises: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
        for i in &self.incidents {
            *f.by_severity
                .entry(i.severity.as_str().to_string())
                .or_default() += 1;
            *f.by_rule.entry(i.rule.clone()).or_default() += 1;
            ack.extend(since(i.acked_at, i));
            close.extend(since(i.closed_at, i));
            f.overdue += u64::from(i.overdue);
            let noted = i.note.as_deref().is_some_and(|n| !n.trim().is_empty());
            f.closed_with_note += u64::from(i.closed_at.is_some() && noted);
            raises.entry(cause(i)).or_default().push(i.raised_at);
        }
        ack.sort_unstable();
        close.sort_unstable();
        f.acknowledged = ack.len() as u64;
        f.ack_median_ms = percentile(&ack, 50);
        f.ack_p90_ms = percentile(&ack, 90);
        f.closed = close.len() as u64;
        f.close_median_ms = percentile(&close, 50);
        f.close_p90_ms = percentile(&close, 90);
        f.disposal_rate = ratio(f.closed_with_note as i64, f.incidents as i64);
        f.chattering_causes = raises
            .into_iter()
            .filter(|(_, t)| telemetry::chatters(t))
            .map(|(c, _)| c)
            .collect();
        f
    }
}

/// A cause as the figures name it: `rule site subject` (the zone, point or agent).
fn cause(i: &Incident) -> String {
    let subject = [
        i.zone.clone(),
        i.point.as_ref().map(|p| p.to_string()),
        i.agent.as_ref().map(|a| a.to_string()),
    ];
    let subject = subject.into_iter().flatten().next().unwrap_or_default();
    format!("{} {} {}", i.rule, i.site, subject)
}

impl Store {
    /// The figures of `sites` (each with the region it is counted under: its region code, or
    /// `""`) over `[from, until)`: intervals that start in it and incidents raised in it (their
    /// acknowledgements and closes as they stand now); in total, per region and per site.
    pub async fn figures(
        &self,
        sites: &BTreeMap<String, String>,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<FigureSet> {
        let (from_ms, until_ms) = (from.timestamp_millis(), until.timestamp_millis());
        // Tallies: the total first, then one per region and one per site; each site names the
        // three it adds to.
        let mut tallies = vec![Tally::default()];
        let mut regions: BTreeMap<&str, usize> = BTreeMap::new();
        let mut of_site: HashMap<&str, [usize; 3]> = HashMap::new();
        for (site, region) in sites {
            let r = *regions.entry(region.as_str()).or_insert_with(|| {
                tallies.push(Tally::default());
                tallies.len() - 1
            });
            tallies.push(Tally::default());
            of_site.insert(site.as_str(), [0, r, tallies.len() - 1]);
        }
        for i in of_site.values().flatten() {
            tallies[*i].sites += 1;
        }
        for r in self.site_intervals(from_ms, until_ms).await? {
            for i in of_site.get(r.site.as_str()).into_iter().flatten() {
                tallies[*i].add_interval(&r);
            }
        }
        // A few sites (a county, a site) are named in the query; many are taken from all.
        let mut sql = String::from(
            "SELECT site, body FROM incidents WHERE raised_ms >= $1 AND raised_ms < $2",
        );
        let named = sites.len() <= MAX_NAMED_SITES;
        if named {
            let marks: Vec<String> = (3..sites.len() + 3).map(|n| format!("${n}")).collect();
            sql.push_str(&format!(" AND site IN ({})", marks.join(", ")));
            if sites.is_empty() {
                sql = sql.replace(" AND site IN ()", " AND 1 = 0");
            }
        }
        let mut q = sqlx::query_as(&sql).bind(from_ms).bind(until_ms);
        for site in sites.keys().filter(|_| named) {
            q = q.bind(site);
        }
        let rows: Vec<(String, String)> = run(q.fetch_all(self.pool())).await?;
        for (site, body) in rows {
            if let Some(adds_to) = of_site.get(site.as_str()) {
                let incident = Self::record_from_body(&body)?.incident;
                for i in adds_to {
                    tallies[*i].incidents.push(incident.clone());
                }
            }
        }
        let mut figures: Vec<Option<Figures>> =
            tallies.into_iter().map(|t| Some(t.figures())).collect();
        let mut take = |i: usize| figures[i].take().unwrap_or_default();
        Ok(FigureSet {
            total: take(0),
            regions: regions
                .into_iter()
                .map(|(r, i)| (r.to_string(), take(i)))
                .collect(),
            sites: of_site
                .into_iter()
                .map(|(s, [_, _, i])| (s.to_string(), take(i)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(id: &str, site: &str, severity: &str, raised: &str) -> serde_json::Value {
        json!({"id": id, "rule": "coal.ch4.working_face", "rule_version": "v", "site": site,
            "agent": "edge", "point": "CH4-101", "severity": severity, "state": "active",
            "value": 1.2, "threshold": 1.0, "raised_at": raised, "acked_at": null, "acked_by": null,
            "cleared_at": null, "closed_at": null, "closed_by": null, "note": null, "late": false,
            "previous": null, "message": "m", "warnings": []})
    }

    /// The same rows on either store: a day of two mines, and rows outside it.
    async fn a_recorded_day(store: &Store) -> FigureSet {
        let mut rows = vec![
            incident("i1", "mine-01", "alarm", "2026-12-01T02:00:00Z"),
            incident("i2", "mine-01", "critical", "2026-12-01T02:20:00Z"),
            incident("i3", "mine-01", "alarm", "2026-12-01T02:40:00Z"),
            incident("i4", "mine-02", "warning", "2026-12-01T03:00:00Z"),
            // The day before (Beijing time), and a site not asked for.
            incident("i5", "mine-01", "alarm", "2026-11-30T15:59:59Z"),
            incident("i6", "plant-03", "alarm", "2026-12-01T03:00:00Z"),
        ];
        for (i, acked, closed, note) in [
            (0, "02:01:00", Some("02:10:00"), "通风"),
            (1, "02:22:00", Some("02:40:00"), "断电撤人"),
            (2, "02:40:30", None, ""),
        ] {
            rows[i]["acked_at"] = json!(format!("2026-12-01T{acked}Z"));
            if let Some(c) = closed {
                rows[i]["closed_at"] = json!(format!("2026-12-01T{c}Z"));
                rows[i]["note"] = json!(note);
            }
        }
        rows[2]["overdue"] = json!(true);
        rows[3]["overdue"] = json!(true);
        rows[3]["rule"] = json!("coal.co");
        for r in &rows {
            let i: Incident = serde_json::from_value(r.clone()).unwrap();
            sqlx::query(
                "INSERT INTO incidents (id, cause, rule, site, state, severity, raised_ms, standing, body) \
                 VALUES ($1, $1, $2, $3, 'active', $4, $5, 1, $6)",
            )
            .bind(&i.id)
            .bind(&i.rule)
            .bind(i.site.as_str())
            .bind(i.severity.as_str())
            .bind(i.raised_at.timestamp_millis())
            .bind(serde_json::to_string(&(&i, 1u64)).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
        }
        let day = telemetry::parse_time("2026-11-30T16:00:00Z").unwrap();
        let at = |h: i64| (day + chrono::Duration::hours(h)).timestamp_millis();
        let iv = |site: &str, start_ms, online_ms, batches, expected| SiteInterval {
            site: site.into(),
            start_ms,
            length_ms: 300_000,
            observed_ms: if site == "mine-01" { 150_000 } else { 300_000 },
            online_ms,
            batches,
            expected,
        };
        store
            .add_site_intervals(&[
                iv("mine-01", at(8), 200_000, 50, 50),
                iv("mine-01", at(9), 40_000, 45, 50),
                iv("mine-02", at(8), 300_000, 10, 10),
                iv("mine-01", at(24), 0, 0, 50),
            ])
            .await
            .unwrap();
        let sites = [("mine-01", "410522"), ("mine-02", "410523")]
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .into();
        store
            .figures(&sites, day, day + chrono::Duration::days(1))
            .await
            .unwrap()
    }

    /// The figures of the recorded day, counted by hand.
    fn check(set: &FigureSet) {
        let t = &set.total;
        assert_eq!(
            (t.sites, t.incidents, t.acknowledged, t.closed),
            (2, 4, 3, 2)
        );
        let sev: Vec<u64> = t.by_severity.values().copied().collect();
        // alarm, critical, info, warning (by name).
        assert_eq!(sev, [2, 1, 0, 1]);
        assert_eq!(t.by_rule["coal.ch4.working_face"], 3);
        // Acknowledged after 60, 120 and 30 s; closed after 600 and 1200 s.
        assert_eq!(
            (t.ack_median_ms, t.ack_p90_ms),
            (Some(60_000), Some(120_000))
        );
        assert_eq!(
            (t.close_median_ms, t.close_p90_ms),
            (Some(600_000), Some(1_200_000))
        );
        assert_eq!((t.overdue, t.closed_with_note), (2, 2));
        assert_eq!(t.disposal_rate, Some(0.5));
        assert_eq!(t.online_rate, Some(0.9));
        assert_eq!((t.batches_received, t.batches_expected), (105, 110));
        assert_eq!(
            t.chattering_causes,
            ["coal.ch4.working_face mine-01 CH4-101"]
        );
        assert_eq!(set.regions["410522"].incidents, 3);
        assert_eq!(set.regions["410523"], set.sites["mine-02"]);
        let m2 = &set.sites["mine-02"];
        assert_eq!(
            (m2.incidents, m2.overdue, m2.online_rate),
            (1, 1, Some(1.0))
        );
        assert_eq!(m2.ack_median_ms, None);
        assert!(m2.chattering_causes.is_empty());
    }

    #[tokio::test]
    async fn a_recorded_day_on_sqlite_matches_the_hand_count() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        check(&a_recorded_day(&store).await);
    }

    #[tokio::test]
    async fn a_recorded_day_on_postgres_is_the_same() {
        let name = format!("hrs_figures_{}", std::process::id());
        let admin = "postgres://postgres@127.0.0.1:5432/postgres";
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .connect(admin)
            .await
            .unwrap();
        let ddl = |verb: &str| format!("{verb} DATABASE {name}");
        sqlx::query(&ddl("CREATE")).execute(&pool).await.unwrap();
        let store = Store::open(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
            .await
            .unwrap();
        let on_postgres = a_recorded_day(&store).await;
        store.pool().close().await;
        let _ = sqlx::query(&(ddl("DROP") + " WITH (FORCE)"))
            .execute(&pool)
            .await;
        let sqlite = Store::open("sqlite::memory:").await.unwrap();
        assert_eq!(on_postgres, a_recorded_day(&sqlite).await);
        check(&on_postgres);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&v, 100), Some(10));
        let v: Vec<i64> = (1..=11).collect();
        assert_eq!(percentile(&v, 90), Some(10));
    }
}
