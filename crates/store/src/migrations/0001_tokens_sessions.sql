-- Schema version 1: API tokens and login sessions (the auth issue).
-- Released migrations are never edited: change the schema by adding the next numbered file.

-- AUTOINCREMENT: an id is never reused, so a log line or audit entry naming token 7 always means the same token.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    -- SHA-256 of the token; the token itself is shown once to its creator and never stored.
    hash         BLOB    NOT NULL CHECK (length(hash) = 32),
    role         TEXT    NOT NULL,
    -- JSON array of camera ids the token may see; NULL = every camera.
    cameras      TEXT,
    created_by   TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER,
    revoked_ms   INTEGER,
    last_used_ms INTEGER
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);

CREATE TABLE sessions (
    -- SHA-256 of the session cookie.
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user       TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions (expires_ms);
CREATE INDEX sessions_user ON sessions (user);
