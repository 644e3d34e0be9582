-- Weather documents as received (CAP XML, CENC JSON), replayed into the warning book on start.
CREATE TABLE weather_docs (
    pos BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
