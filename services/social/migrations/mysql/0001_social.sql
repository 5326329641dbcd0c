-- 0001: the social graph.
--
-- Every string column is utf8mb4_bin, so ids compare byte for byte ("Bob"
-- and "bob" are two users) and sort as Go sorts them: GetMembership's
-- member lists come out of the primary key already in Go order. Times are
-- unix milliseconds.

-- A pending friend request from from_user to to_user. The primary key
-- serves the outgoing list, friend_requests_to the incoming one.
CREATE TABLE IF NOT EXISTS friend_requests (
    from_user  VARCHAR(64)  NOT NULL,
    to_user    VARCHAR(64)  NOT NULL,
    message    VARCHAR(256) NOT NULL,
    created_at BIGINT       NOT NULL,
    PRIMARY KEY (from_user, to_user),
    KEY friend_requests_to (to_user, from_user)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A friendship is two rows, (a, b) and (b, a), written and deleted
-- together, so one user's friends are one range of the primary key, in id
-- order (paging is a range scan) and the pair check is one index dive.
CREATE TABLE IF NOT EXISTS friends (
    user_a VARCHAR(64) NOT NULL,
    user_b VARCHAR(64) NOT NULL,
    since  BIGINT      NOT NULL,
    PRIMARY KEY (user_a, user_b)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- blocker blocks blocked. "Either way" checks are two primary-key dives.
CREATE TABLE IF NOT EXISTS blocks (
    blocker    VARCHAR(64) NOT NULL,
    blocked    VARCHAR(64) NOT NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (blocker, blocked)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per pair of users (user_lo < user_hi) that ever had a request,
-- friendship or block between them. Every transaction that changes the
-- pair's requests, friendship or blocks first locks this row (SELECT ...
-- FOR UPDATE: a record lock, no gap lock), so the changes of one pair run
-- one at a time and need no locking reads of the three tables above,
-- whose gap locks deadlock concurrent inserts. Rows are never deleted.
CREATE TABLE IF NOT EXISTS pair_locks (
    user_lo VARCHAR(64) NOT NULL,
    user_hi VARCHAR(64) NOT NULL,
    PRIMARY KEY (user_lo, user_hi)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Groups. Not "groups": that is a reserved word in MySQL 8. A disbanded
-- group keeps its row (disbanded_at set, no members) so that its version
-- keeps growing past the disband and its id is never handed out again.
-- member_count and version change only under the row's lock (SELECT ...
-- FOR UPDATE), in the transaction that changes the members.
CREATE TABLE IF NOT EXISTS social_groups (
    id           VARCHAR(64)  NOT NULL,
    name         VARCHAR(64)  NOT NULL,
    description  VARCHAR(512) NOT NULL,
    owner        VARCHAR(64)  NOT NULL,
    member_count INT          NOT NULL,
    version      BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    disbanded_at BIGINT       NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Members by group (primary key: member lists, paged by user id) and by
-- user (group_members_user: a user's groups, paged by group id).
CREATE TABLE IF NOT EXISTS group_members (
    group_id  VARCHAR(64) NOT NULL,
    user_id   VARCHAR(64) NOT NULL,
    role      VARCHAR(8)  NOT NULL,
    joined_at BIGINT      NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY group_members_user (user_id, group_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
