-- 0001: users and their refresh tokens.
--
-- users.id is the username, lower-case, and is the user id everywhere else
-- (the JWT subject, inbox owner). password_hash is an argon2id PHC string.
-- roles is a comma-separated, sorted list ("operator,user"). Times are unix
-- milliseconds. Text compares byte for byte (utf8mb4_bin); ids are stored
-- lower-case, so the primary key makes usernames unique regardless of case.
CREATE TABLE IF NOT EXISTS users (
    id            VARCHAR(64)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    display_name  VARCHAR(64)  NOT NULL DEFAULT '',
    bio           VARCHAR(512) NOT NULL DEFAULT '',
    avatar_url    VARCHAR(512) NOT NULL DEFAULT '',
    roles         VARCHAR(255) NOT NULL,
    created_at    BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per refresh token ever issued, until it expires. hash is the
-- SHA-256 of the token (the token itself is never stored). family groups
-- the tokens of one login: each refresh adds a row to it and marks the
-- presented one used; presenting a used token revokes the whole family.
-- refresh_user serves "log out everywhere", refresh_family the family
-- revocation, refresh_expiry the removal of expired rows.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       BINARY(32)  NOT NULL,
    user_id    VARCHAR(64) NOT NULL,
    family     BINARY(16)  NOT NULL,
    expires_at BIGINT      NOT NULL,
    used_at    BIGINT      NULL,
    revoked_at BIGINT      NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (hash),
    KEY refresh_user (user_id),
    KEY refresh_family (family),
    KEY refresh_expiry (expires_at),
    CONSTRAINT refresh_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
