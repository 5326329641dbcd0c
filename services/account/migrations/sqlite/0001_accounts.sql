-- 0001: users and their refresh tokens.
--
-- users.id is the username, lower-case, and is the user id everywhere else
-- (the JWT subject, inbox owner). password_hash is an argon2id PHC string.
-- roles is a comma-separated, sorted list ("operator,user"). Times are unix
-- milliseconds. STRICT makes SQLite check column types as MySQL does; text
-- compares byte for byte (BINARY collation), and ids are stored lower-case,
-- so the primary key makes usernames unique regardless of case.
CREATE TABLE IF NOT EXISTS users (
    id            TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    display_name  TEXT    NOT NULL DEFAULT '',
    bio           TEXT    NOT NULL DEFAULT '',
    avatar_url    TEXT    NOT NULL DEFAULT '',
    roles         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per refresh token ever issued, until it expires. hash is the
-- SHA-256 of the token (the token itself is never stored). family groups
-- the tokens of one login: each refresh adds a row to it and marks the
-- presented one used; presenting a used token revokes the whole family.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family     BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS refresh_user ON refresh_tokens (user_id);
CREATE INDEX IF NOT EXISTS refresh_family ON refresh_tokens (family);
CREATE INDEX IF NOT EXISTS refresh_expiry ON refresh_tokens (expires_at);
