-- Raw payloads of dead letters and weather documents are kept as bytes (BLOB values; a column
-- of TEXT affinity keeps a BLOB as it is), so any payload is stored exactly and can be restored.
UPDATE dead_letters SET raw = CAST(raw AS BLOB);
UPDATE weather_docs SET body = CAST(body AS BLOB);
-- When each agent epoch last spoke (gateway clock): only recent epochs are loaded at start;
-- older ones come back from the store when they speak again. Windows written before this
-- column are taken as recent (the first start loads them as before).
ALTER TABLE seq_windows ADD COLUMN seen_ms BIGINT NOT NULL DEFAULT 9223372036854775807;
