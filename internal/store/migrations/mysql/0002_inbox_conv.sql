-- 0002: page one conversation of an owner (history) without reading the
-- owner's other conversations. IF NOT EXISTS is MariaDB's (and what makes a
-- rerun after a crash safe); on MySQL 8 drop it by hand if needed.
CREATE INDEX IF NOT EXISTS inbox_conv ON inbox (owner, conv, seq);
