package store

import "github.com/surgechat/surge/internal/sqldb"

// SQLite, the embedded default, through modernc.org/sqlite (pure Go), opened
// by package sqldb: WAL, synchronous=NORMAL, a 10 s busy_timeout, and writes
// through one connection whose transactions begin with BEGIN IMMEDIATE,
// which takes the database's write lock before Append's first read. Writers
// are thereby serialised: within a Store they queue in database/sql,
// honouring their contexts; across Stores or processes on one file they
// queue on the lock. Append's reads and its insert therefore see one state,
// and a second writer numbers after the first instead of conflicting.
// Inbox and LastSeq use the separate pool of read-only connections.
var sqliteDialect = dialect{
	// A row value IN a VALUES list: one index lookup per pair.
	existingSQL: func(n int) string {
		return "SELECT msg_id, owner FROM inbox WHERE (msg_id, owner) IN (VALUES " + sqldb.Placeholders(n, 2) + ")"
	},
	// A correlated MAX per owner: SQLite answers each with one index dive,
	// whereas MAX(seq) ... GROUP BY owner would scan every row of the owners.
	lastSeqsSQL: func(n int) string {
		return "SELECT o.column1, (SELECT MAX(seq) FROM inbox WHERE owner = o.column1) FROM (VALUES " + sqldb.Placeholders(n, 1) + ") AS o"
	},
}
