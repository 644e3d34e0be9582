-- What the rule engine accumulates and a restart must not lose: driving time (continuous,
-- its rest, within 24 h) and geofence dwell, per rule and point (issue 19). `state` is the
-- engine's AccumulatedState as JSON; `saved_ms` the gateway clock when it was saved.
CREATE TABLE accumulated (
    rule TEXT NOT NULL,
    site TEXT NOT NULL,
    point TEXT NOT NULL,
    state TEXT NOT NULL,
    saved_ms BIGINT NOT NULL,
    PRIMARY KEY (rule, site, point)
);
