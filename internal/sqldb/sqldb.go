package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Drivers accepted in Config.Driver.
const (
	DriverMySQL  = "mysql"  // MySQL or MariaDB through github.com/go-sql-driver/mysql
	DriverSQLite = "sqlite" // embedded SQLite through modernc.org/sqlite (pure Go)
)

// Default pool sizes; see Config.MaxOpenConns.
const (
	DefaultMySQLConns  = 16
	DefaultSQLiteConns = 4
)

// Config selects one database.
type Config struct {
	// Driver is DriverMySQL or DriverSQLite. The zero value is invalid.
	Driver string

	// DSN names the database. For mysql it is a go-sql-driver/mysql DSN
	// that names a database, such as "user:pw@tcp(db1:3306)/surge";
	// interpolateParams is turned on unless the DSN sets it. For sqlite it
	// is a plain file path (no "?" parameters, no ":memory:"), created if
	// missing. Empty is invalid.
	DSN string

	// MaxOpenConns caps the connection pool. For sqlite it caps the readers
	// only: writes always go through one connection. Zero means
	// DefaultMySQLConns for mysql and DefaultSQLiteConns for sqlite.
	MaxOpenConns int
}

func (c *Config) setDefaults() {
	if c.MaxOpenConns != 0 {
		return
	}
	switch c.Driver {
	case DriverMySQL:
		c.MaxOpenConns = DefaultMySQLConns
	case DriverSQLite:
		c.MaxOpenConns = DefaultSQLiteConns
	}
}

// Validate reports what is wrong with c, before anything is opened.
func (c Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	switch c.Driver {
	case DriverMySQL, DriverSQLite:
	case "":
		return errors.New("Config.Driver is empty")
	default:
		return fmt.Errorf("unknown Config.Driver %q (want %q or %q)", c.Driver, DriverMySQL, DriverSQLite)
	}
	if c.DSN == "" {
		return errors.New("Config.DSN is empty")
	}
	if c.Driver == DriverSQLite && (strings.Contains(c.DSN, "?") || strings.Contains(c.DSN, ":memory:")) {
		// Parameters would fight our own, and every pooled connection to
		// ":memory:" would see a different database.
		return errors.New("Config.DSN: want a plain sqlite file path")
	}
	if c.MaxOpenConns < 0 {
		return fmt.Errorf("Config.MaxOpenConns %d is negative", c.MaxOpenConns)
	}
	return nil
}

// DB is one open database.
type DB struct {
	// Driver is DriverMySQL or DriverSQLite.
	Driver string

	// W is for writes and for reads that must see them in one
	// transaction. On sqlite it holds exactly one connection and its
	// transactions begin with BEGIN IMMEDIATE, taking the database's write
	// lock at once: writers queue in database/sql (honouring their
	// contexts) and across processes on the file's lock (for up to the
	// busy timeout, 10 s), and a transaction's reads and writes see one
	// state. Keep write transactions short, and never hold one while
	// waiting for W in the same goroutine: that deadlocks on sqlite.
	W *sql.DB

	// R is for reads outside write transactions. On sqlite it is a pool of
	// read-only connections that run beside the writer (WAL) and see every
	// committed write; on mysql it is the same pool as W.
	R *sql.DB
}

// Open connects to the database that cfg names and checks that it
// answers. It applies no migrations: see Migrate. On error nothing stays
// open. Errors never quote the DSN, which may hold a password.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sqldb: %w", err)
	}
	var db *DB
	var err error
	if cfg.Driver == DriverSQLite {
		db, err = openSQLite(ctx, cfg.DSN, cfg.MaxOpenConns)
	} else {
		db, err = openMySQL(ctx, cfg.DSN, cfg.MaxOpenConns)
	}
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", cfg.Driver, err)
	}
	return db, nil
}

// Ping checks that both pools answer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.W.PingContext(ctx); err != nil {
		return err
	}
	if db.R != db.W {
		return db.R.PingContext(ctx)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.R != db.W {
		errs = append(errs, db.R.Close())
	}
	errs = append(errs, db.W.Close())
	return errors.Join(errs...)
}

// txAttempts bounds how often Tx runs a transaction that deadlocks.
const txAttempts = 3

// Tx runs fn in a transaction on W and commits it, or rolls it back if fn
// fails. When fn or the commit fails with a deadlock (IsDeadlock: InnoDB
// rolled the whole transaction back), Tx runs fn again in a new
// transaction, up to 3 times in all, so fn must do nothing outside tx that
// a rerun would repeat. fn's own errors are returned as they are, so
// callers can match their sentinels with errors.Is.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range txAttempts {
		err = db.tx(ctx, fn)
		if !IsDeadlock(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}
