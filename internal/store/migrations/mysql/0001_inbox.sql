-- 0001: the inbox, one row per message per owner.
--
-- Every string column is utf8mb4_bin, so keys compare byte for byte and
-- "Bob" and "bob" are two owners. utf8mb4_bin does ignore trailing spaces,
-- which is why the store refuses an owner ending in one. The primary key
-- keeps each owner's rows together in seq order (paging is a range scan,
-- MAX(seq) one index dive); inbox_msg makes a message id unique per owner
-- and serves the de-duplication lookups by (msg_id, owner).
CREATE TABLE IF NOT EXISTS inbox (
    owner         VARCHAR(128)    NOT NULL,
    seq           BIGINT UNSIGNED NOT NULL,
    msg_id        BINARY(16)      NOT NULL,
    sender        VARCHAR(64)     NOT NULL,
    client_msg_id VARCHAR(64)     NOT NULL,
    conv          VARCHAR(130)    NOT NULL,
    body          MEDIUMBLOB      NOT NULL,
    sent_at       BIGINT          NOT NULL,
    stored_at     BIGINT          NOT NULL,
    PRIMARY KEY (owner, seq),
    UNIQUE KEY inbox_msg (msg_id, owner)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
