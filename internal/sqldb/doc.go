// Package sqldb opens a database for Surge, on MySQL/MariaDB
// (github.com/go-sql-driver/mysql) or the embedded SQLite (modernc.org/sqlite),
// and applies a component's versioned migrations to it. A DB holds a write
// pool W and a read pool R: on SQLite W is one connection whose transactions
// begin with BEGIN IMMEDIATE, so writers are serialised and never deadlock,
// and R is a pool of read-only connections that WAL lets run beside the
// writer; on MySQL both are the same pool. Each component migrates from its
// own fs.FS (laid out as <driver>/NNNN_name.sql) into its own version table,
// so the inbox store and the services keep separate histories even in one
// database. IsDuplicate, IsDeadlock and IsConflict classify driver errors the
// same way on both engines. A DB is safe for concurrent use; Migrate may run
// in several processes at once against one database.
package sqldb
