package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite, the embedded default, through modernc.org/sqlite (pure Go).
//
// Open switches the file to journal_mode=WAL, which lasts with the file:
// readers never wait for the writer, nor it for them. Every connection sets:
//   - synchronous=NORMAL: under WAL a commit survives the crash of the
//     process at once (the log is in the OS's hands); only a power cut or
//     kernel crash can lose the last commits. FULL would fsync every commit.
//   - busy_timeout: a writer waits up to 10 s for another connection's write
//     transaction instead of failing with SQLITE_BUSY.
//
// Writes go through a pool of exactly one connection whose transactions
// begin with BEGIN IMMEDIATE (_txlock=immediate), which takes the database's
// write lock before Append's first read. Writers are thereby serialised:
// within a Store they queue in database/sql, honouring their contexts;
// across Stores or processes on one file they queue on the lock. Append's
// reads and its insert therefore see one state, and a second writer numbers
// after the first instead of conflicting. Reads use a separate small pool of
// read-only connections.
const (
	sqliteDriver      = "sqlite"
	sqliteBusyTimeout = 10 * time.Second // as busy_timeout(10000) below
	sqlitePragmas     = "_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
)

var sqliteDialect = dialect{
	name:        DriverSQLite,
	schemaTable: "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",

	// A row value IN a VALUES list: one index lookup per pair.
	existingSQL: func(n int) string {
		return "SELECT msg_id, owner FROM inbox WHERE (msg_id, owner) IN (VALUES " + placeholders(n, 2) + ")"
	},
	// A correlated MAX per owner: SQLite answers each with one index dive,
	// whereas MAX(seq) ... GROUP BY owner would scan every row of the owners.
	lastSeqsSQL: func(n int) string {
		return "SELECT o.column1, (SELECT MAX(seq) FROM inbox WHERE owner = o.column1) FROM (VALUES " + placeholders(n, 1) + ") AS o"
	},
	isConflict: func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		code := se.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || code == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	},
}

// openSQLite opens the database file at path, creating it if needed.
func openSQLite(ctx context.Context, path string, maxReaders int) (*backend, error) {
	w, err := sql.Open(sqliteDriver, path+"?"+sqlitePragmas+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)

	r, err := sql.Open(sqliteDriver, path+"?"+sqlitePragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)

	b := &backend{d: &sqliteDialect, w: w, r: r}
	if err := enableWAL(ctx, w); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// enableWAL switches the database of db to WAL. The switch does not wait
// through busy_timeout when another connection is opening the same new
// file (it fails with SQLITE_BUSY at once), so it is retried here, for up to
// sqliteBusyTimeout.
func enableWAL(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, sqliteBusyTimeout)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			return fmt.Errorf("journal_mode stays %q", mode)
		}
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
			return fmt.Errorf("journal_mode = WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("journal_mode = WAL: %w", err)
		case <-time.After(delay):
		}
	}
}
