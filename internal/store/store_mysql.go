package store

import "github.com/surgechat/surge/internal/sqldb"

// MySQL and MariaDB, through github.com/go-sql-driver/mysql, opened by
// package sqldb (one pool for reads and writes, interpolateParams on unless
// the DSN sets it).
//
// Isolation: Append runs at the server's default level, REPEATABLE READ
// unless the server is configured otherwise, and its correctness does not
// depend on the level. Its two SELECTs are plain consistent reads that lock
// nothing; the guard against forking a sequence is the unique keys, which
// InnoDB checks at INSERT against the latest committed (or locked) rows
// whatever the snapshot. A writer that read stale state therefore fails
// with a duplicate key and never stores a gap or a fork. READ COMMITTED
// would narrow the window a little (a fresh snapshot per statement) and
// take fewer gap locks when duplicates collide, but asking for it costs a
// SET TRANSACTION round trip per Append, and collisions only happen while a
// partition moves between shards.
//
// Errors mapped to ErrConflict (sqldb.IsConflict): 1062 (duplicate key: on
// PRIMARY when another writer took one of our seqs, on inbox_msg when it
// stored one of our messages since we looked) and 1213 (deadlock between
// writers inserting into the same owners; InnoDB rolled this one back
// whole). After Append's own de-duplication both can only come from a
// concurrent writer.
var mysqlDialect = dialect{
	// A row constructor IN list: a range scan of exact (msg_id, owner)
	// points on inbox_msg. Separate IN lists on both columns would make
	// the optimizer consider their cross product (n*n ranges), which MySQL
	// abandons for a full scan beyond range_optimizer_max_mem_size.
	existingSQL: func(n int) string {
		return "SELECT msg_id, owner FROM inbox WHERE (msg_id, owner) IN (" + sqldb.Placeholders(n, 2) + ")"
	},
	// A loose index scan of the primary key: one dive per owner.
	lastSeqsSQL: func(n int) string {
		return "SELECT owner, MAX(seq) FROM inbox WHERE owner IN (" + sqldb.Marks(n) + ") GROUP BY owner"
	},
}
