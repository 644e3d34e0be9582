CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    cause TEXT NOT NULL,
    rule TEXT NOT NULL,
    site TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    raised_ms BIGINT NOT NULL,
    standing BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX incidents_site ON incidents (site, raised_ms);
CREATE INDEX incidents_raised ON incidents (raised_ms, id);
CREATE INDEX incidents_standing ON incidents (standing);

CREATE TABLE incident_events (
    pos BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    incident_id TEXT NOT NULL,
    site TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, event_seq);

CREATE TABLE seq_windows (
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    epoch TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (site, agent, epoch)
);

CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE catalogues (
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (site, agent)
);

CREATE TABLE dead_letters (
    pos BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);

CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    pos BIGINT NOT NULL
);
