//! What the gateway keeps of the past besides incidents: per site and interval, how long it
//! was watched and online and how many batches came of those expected (the regulator's
//! online rate and data completeness), and every catalogue (birth) each agent had, with the
//! time it was taken (so a replay of a past period binds the points as they were then).

use super::{run, timed, Result, Store};

/// One site over one interval of the gateway clock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteInterval {
    pub site: String,
    /// The interval's start (ms since the Unix epoch, a multiple of its length).
    pub start_ms: i64,
    pub length_ms: i64,
    /// How much of the interval the gateway watched the site (it ran, and knew the site).
    pub observed_ms: i64,
    /// How much of it at least one agent of the site was online.
    pub online_ms: i64,
    /// New batches that arrived in it.
    pub batches: i64,
    /// Batches expected in it: the seq span they covered, per agent epoch.
    pub expected: i64,
}

/// One catalogue as an agent sent it, and when the gateway took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueVersion {
    pub site: String,
    pub agent: String,
    /// 0 for a catalogue kept before the history was (in force since an unknown time).
    pub at_ms: i64,
    pub body: String,
}

const ADD_SITE_INTERVAL: &str = "INSERT INTO site_intervals \
     (site, start_ms, length_ms, observed_ms, online_ms, batches, expected) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site, start_ms) DO UPDATE SET \
     observed_ms = site_intervals.observed_ms + excluded.observed_ms, \
     online_ms = site_intervals.online_ms + excluded.online_ms, \
     batches = site_intervals.batches + excluded.batches, \
     expected = site_intervals.expected + excluded.expected";

const UPSERT_CATALOGUE: &str = "INSERT INTO catalogues (site, agent, body) VALUES ($1, $2, $3) \
     ON CONFLICT (site, agent) DO UPDATE SET body = excluded.body";

impl Store {
    /// Add intervals, in one transaction. An interval already there (a gateway restarted
    /// within it) takes the sums of both.
    pub async fn add_site_intervals(&self, rows: &[SiteInterval]) -> Result<()> {
        timed(async {
            let mut tx = self.pool().begin().await?;
            for r in rows {
                let mut q = sqlx::query(ADD_SITE_INTERVAL).bind(&r.site);
                let numbers = [r.start_ms, r.length_ms, r.observed_ms, r.online_ms];
                for n in numbers.into_iter().chain([r.batches, r.expected]) {
                    q = q.bind(n);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The intervals that start in `[from_ms, until_ms)`, added up per site (one row a site:
    /// `start_ms` the first start, `length_ms` the time from it to the last interval's end).
    /// Sums of integers, exact on either store.
    pub async fn site_intervals(&self, from_ms: i64, until_ms: i64) -> Result<Vec<SiteInterval>> {
        let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = run(sqlx::query_as(
            "SELECT site, MIN(start_ms), CAST(MAX(start_ms + length_ms) - MIN(start_ms) AS BIGINT), \
             CAST(SUM(observed_ms) AS BIGINT), CAST(SUM(online_ms) AS BIGINT), \
             CAST(SUM(batches) AS BIGINT), CAST(SUM(expected) AS BIGINT) \
             FROM site_intervals WHERE start_ms >= $1 AND start_ms < $2 GROUP BY site ORDER BY site",
        )
        .bind(from_ms)
        .bind(until_ms)
        .fetch_all(self.pool()))
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(site, start_ms, length_ms, observed_ms, online_ms, batches, expected)| {
                    SiteInterval {
                        site,
                        start_ms,
                        length_ms,
                        observed_ms,
                        online_ms,
                        batches,
                        expected,
                    }
                },
            )
            .collect())
    }

    /// Keep an agent's catalogue as the one in force, and in the history when it differs
    /// from the one before (`at_ms`: when it was taken).
    pub async fn save_catalogue(
        &self,
        site: &str,
        agent: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<()> {
        timed(async {
            let mut tx = self.pool().begin().await?;
            let before: Option<String> =
                sqlx::query_scalar("SELECT body FROM catalogues WHERE site = $1 AND agent = $2")
                    .bind(site)
                    .bind(agent)
                    .fetch_optional(&mut *tx)
                    .await?;
            if before.as_deref() != Some(body) {
                sqlx::query(
                    "INSERT INTO catalogue_history (site, agent, at_ms, body) VALUES ($1, $2, $3, $4)",
                )
                .bind(site)
                .bind(agent)
                .bind(at_ms)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            let upsert = sqlx::query(UPSERT_CATALOGUE).bind(site).bind(agent);
            upsert.bind(body).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The catalogues in force at some time in `[from_ms, until_ms)`: for each agent the last
    /// one taken at or before `from_ms`, then those taken within, in the order they came.
    pub async fn catalogues_between(
        &self,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<CatalogueVersion>> {
        let rows: Vec<(String, String, i64, String)> = run(sqlx::query_as(
            "SELECT site, agent, at_ms, body FROM catalogue_history WHERE at_ms < $1 \
             ORDER BY at_ms, pos",
        )
        .bind(until_ms)
        .fetch_all(self.pool()))
        .await?;
        let mut before: std::collections::BTreeMap<(String, String), CatalogueVersion> =
            Default::default();
        let mut within = Vec::new();
        for (site, agent, at_ms, body) in rows {
            let v = CatalogueVersion {
                site,
                agent,
                at_ms,
                body,
            };
            if at_ms <= from_ms {
                before.insert((v.site.clone(), v.agent.clone()), v);
            } else {
                within.push(v);
            }
        }
        let mut out: Vec<CatalogueVersion> = before.into_values().collect();
        out.extend(within);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn intervals_add_up_and_catalogues_keep_their_versions() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let row = SiteInterval {
            site: "mine-01".into(),
            start_ms: 300_000,
            length_ms: 300_000,
            observed_ms: 100_000,
            online_ms: 50_000,
            batches: 9,
            expected: 10,
        };
        store
            .add_site_intervals(std::slice::from_ref(&row))
            .await
            .unwrap();
        store
            .add_site_intervals(std::slice::from_ref(&row))
            .await
            .unwrap();
        let later = SiteInterval {
            start_ms: 600_000,
            ..row.clone()
        };
        store.add_site_intervals(&[later]).await.unwrap();
        let got = store.site_intervals(0, 600_000).await.unwrap();
        assert_eq!(got.len(), 1);
        let both = store.site_intervals(0, 900_000).await.unwrap();
        assert_eq!((both[0].start_ms, both[0].length_ms), (300_000, 600_000));
        assert_eq!((both[0].observed_ms, both[0].batches), (300_000, 27));
        assert_eq!(
            (got[0].observed_ms, got[0].batches, got[0].expected),
            (200_000, 18, 20)
        );
        assert!(store
            .site_intervals(300_001, 600_000)
            .await
            .unwrap()
            .is_empty());

        // A repeated birth (20) adds no version.
        for (v, at_ms) in [(1, 10), (1, 20), (2, 30), (3, 50)] {
            let body = format!("{{\"v\":{v}}}");
            store
                .save_catalogue("mine-01", "edge", &body, at_ms)
                .await
                .unwrap();
        }
        let at = |from, until| {
            let store = store.clone();
            async move {
                store
                    .catalogues_between(from, until)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|v| (v.at_ms, v.body))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            at(25, 45).await,
            vec![(10, "{\"v\":1}".to_string()), (30, "{\"v\":2}".to_string())]
        );
        assert_eq!(at(35, 100).await.len(), 2);
        assert_eq!(store.catalogues().await.unwrap()[0].2, "{\"v\":3}");
    }
}
