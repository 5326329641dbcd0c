-- 0001: the social graph. The same tables as mysql/0001_social.sql (see
-- the comments there) except pair_locks, which SQLite does not need: its
-- writer holds the database's lock for a whole transaction. STRICT makes
-- SQLite check column types as MySQL does, WITHOUT ROWID clusters rows on
-- the primary key, and text compares byte for byte (BINARY collation).
-- Times are unix milliseconds.

CREATE TABLE IF NOT EXISTS friend_requests (
    from_user  TEXT    NOT NULL,
    to_user    TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_user, to_user)
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS friend_requests_to ON friend_requests (to_user, from_user);

CREATE TABLE IF NOT EXISTS friends (
    user_a TEXT    NOT NULL,
    user_b TEXT    NOT NULL,
    since  INTEGER NOT NULL,
    PRIMARY KEY (user_a, user_b)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS blocks (
    blocker    TEXT    NOT NULL,
    blocked    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker, blocked)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS social_groups (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    member_count INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    disbanded_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS group_members (
    group_id  TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS group_members_user ON group_members (user_id, group_id);
