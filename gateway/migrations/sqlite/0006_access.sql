-- Access (contract 1.1): console users, API tokens, console sessions and the audit log.
-- Passwords are argon2id PHC strings; tokens and session ids are kept as SHA-256 hashes only.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until_ms BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE TABLE audit_log (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    who TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    site TEXT,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
-- Bumped on every revocation (a token revoked, a user disabled, a session ended): a running
-- gateway watches it to end the open streams of credentials that no longer hold.
CREATE TABLE access_version (
    id INTEGER PRIMARY KEY,
    v BIGINT NOT NULL
);
INSERT INTO access_version (id, v) VALUES (1, 0);
