-- 0001: the inbox, one row per message per owner.
--
-- STRICT makes SQLite check column types as MySQL does. WITHOUT ROWID
-- clusters the rows on the primary key, so each owner's rows sit together in
-- seq order (paging is a range scan, MAX(seq) one index dive). inbox_msg
-- makes a message id unique per owner and serves the de-duplication lookups
-- by (msg_id, owner). Text compares byte for byte (BINARY collation).
CREATE TABLE IF NOT EXISTS inbox (
    owner         TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    msg_id        BLOB    NOT NULL,
    sender        TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    conv          TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    sent_at       INTEGER NOT NULL,
    stored_at     INTEGER NOT NULL,
    PRIMARY KEY (owner, seq)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX IF NOT EXISTS inbox_msg ON inbox (msg_id, owner);
