-- The regulator's figures and replays of real history (issue 26).
-- Per site and interval of the gateway clock (`ingest.figures_interval_ms`, 5 min by
-- default): how long it was watched, how long at least one of its agents was online, and the
-- batches that arrived against those expected (the seq span, as the contract's completeness).
-- The core writes one row per site per interval, when the interval ends.
CREATE TABLE site_intervals (
    site TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    length_ms BIGINT NOT NULL,
    observed_ms BIGINT NOT NULL,
    online_ms BIGINT NOT NULL,
    batches BIGINT NOT NULL,
    expected BIGINT NOT NULL,
    PRIMARY KEY (site, start_ms)
);
CREATE INDEX site_intervals_start ON site_intervals (start_ms);
-- Every catalogue (birth) a site's agent had, from when the gateway took it: a replay of a
-- past period binds the points as they were then. A repeated identical birth adds no row.
CREATE TABLE catalogue_history (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX catalogue_history_at ON catalogue_history (at_ms);
-- The catalogues kept before this history: in force since an unknown time (0).
INSERT INTO catalogue_history (site, agent, at_ms, body) SELECT site, agent, 0, body FROM catalogues;
