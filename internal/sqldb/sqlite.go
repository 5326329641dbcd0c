package sqldb

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
//   - foreign_keys=ON: REFERENCES clauses are enforced, as InnoDB does.
//
// Writes go through a pool of exactly one connection whose transactions
// begin with BEGIN IMMEDIATE (_txlock=immediate), which takes the database's
// write lock before a transaction's first read. Writers are thereby
// serialised: within a DB they queue in database/sql, honouring their
// contexts; across DBs or processes on one file they queue on the lock. A
// write transaction's reads and writes therefore see one state, and two
// writers never deadlock. Reads use a separate small pool of read-only
// connections.
const (
	sqliteDriver      = "sqlite"
	sqliteBusyTimeout = 10 * time.Second // as busy_timeout(10000) below
	sqlitePragmas     = "_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
)

// openSQLite opens the database file at path, creating it if needed.
func openSQLite(ctx context.Context, path string, maxReaders int) (*DB, error) {
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

	db := &DB{Driver: DriverSQLite, W: w, R: r}
	if err := enableWAL(ctx, w); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
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
		if !isSQLiteBusy(err) {
			return fmt.Errorf("journal_mode = WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("journal_mode = WAL: %w", err)
		case <-time.After(delay):
		}
	}
}

// sqliteCode returns the extended result code of a SQLite error.
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return se.Code(), true
}

func isSQLiteBusy(err error) bool {
	code, ok := sqliteCode(err)
	return ok && code&0xff == sqlite3.SQLITE_BUSY
}
