-- 0002: page one conversation of an owner (history) without reading the
-- owner's other conversations.
CREATE INDEX IF NOT EXISTS inbox_conv ON inbox (owner, conv, seq);
