-- Forwarding (issue 9): per-target, per-site progress through the event log (the outbox),
-- parked deliveries, subscribers.
CREATE INDEX incident_events_site_pos ON incident_events (site, pos);

CREATE TABLE delivery_targets (
    target TEXT PRIMARY KEY,
    start_pos BIGINT NOT NULL
);

CREATE TABLE delivery_progress (
    target TEXT NOT NULL,
    site TEXT NOT NULL,
    pos BIGINT NOT NULL,
    PRIMARY KEY (target, site)
);

CREATE TABLE parked_deliveries (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    pos BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    status BIGINT NOT NULL,
    error TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    parked_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    resent_ms BIGINT
);
CREATE INDEX parked_deliveries_state ON parked_deliveries (state, id);

CREATE TABLE subscribers (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
