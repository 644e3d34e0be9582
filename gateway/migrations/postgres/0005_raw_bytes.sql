-- Raw payloads of dead letters and weather documents are kept as bytes, so any payload (NUL
-- bytes, invalid UTF-8, UTF-16 or GB18030 documents) is stored exactly and can be restored.
ALTER TABLE dead_letters ALTER COLUMN raw TYPE BYTEA USING convert_to(raw, 'UTF8');
ALTER TABLE weather_docs ALTER COLUMN body TYPE BYTEA USING convert_to(body, 'UTF8');
-- When each agent epoch last spoke (gateway clock): only recent epochs are loaded at start;
-- older ones come back from the store when they speak again. Windows written before this
-- column are taken as seen now (the first start loads them as before).
ALTER TABLE seq_windows ADD COLUMN seen_ms BIGINT NOT NULL DEFAULT 9223372036854775807;
