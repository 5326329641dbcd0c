package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/surgechat/surge/internal/sqldb"
)

// Drivers accepted in Config.Driver.
const (
	DriverMySQL  = sqldb.DriverMySQL  // MySQL or MariaDB through github.com/go-sql-driver/mysql
	DriverSQLite = sqldb.DriverSQLite // embedded SQLite through modernc.org/sqlite (pure Go)
)

// Config selects the databases behind a Store.
type Config struct {
	// Driver is DriverMySQL or DriverSQLite. The zero value is invalid.
	Driver string

	// DSNs lists the databases; partition p lives in DSNs[p % len(DSNs)],
	// so the list must not be reordered or shortened once data exists.
	// For mysql each entry is a go-sql-driver/mysql DSN naming a database,
	// such as "user:pw@tcp(db1:3306)/surge". For sqlite each entry is a
	// plain file path (no "?" parameters: the store sets its own), created
	// if missing. Nil or empty is invalid.
	DSNs []string

	// MaxOpenConns caps the connection pool of each DSN. For sqlite it caps
	// the readers only: writes always go through one connection, as SQLite
	// admits one writer at a time. Zero means 16 for mysql and 4 for sqlite.
	MaxOpenConns int
}

// validate checks every DSN as sqldb would, before any is opened; sqldb
// fills in the pool defaults.
func (c *Config) validate() error {
	if c.Driver != DriverMySQL && c.Driver != DriverSQLite {
		return fmt.Errorf("store: Config.Driver %q: want %q or %q", c.Driver, DriverMySQL, DriverSQLite)
	}
	if len(c.DSNs) == 0 {
		return errors.New("store: Config.DSNs is empty")
	}
	for i, dsn := range c.DSNs {
		if err := (sqldb.Config{Driver: c.Driver, DSN: dsn, MaxOpenConns: c.MaxOpenConns}).Validate(); err != nil {
			// The DSN itself may hold a password: name it by index only.
			return fmt.Errorf("store: Config.DSNs[%d]: %w", i, err)
		}
	}
	return nil
}

// Open connects to every DSN in cfg, applies pending schema migrations to
// each, and returns a Store that routes each partition to its DSN. On error
// nothing stays open.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg.DSNs = append([]string(nil), cfg.DSNs...) // the caller keeps its slice
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &mysqlDialect
	if cfg.Driver == DriverSQLite {
		d = &sqliteDialect
	}
	backends := make([]*backend, 0, len(cfg.DSNs))
	for i, dsn := range cfg.DSNs {
		b, err := openBackend(ctx, cfg.Driver, dsn, cfg.MaxOpenConns, d)
		if err != nil {
			for _, b := range backends {
				b.close()
			}
			// The DSN itself may hold a password: name it by index only.
			return nil, fmt.Errorf("store: open %s DSNs[%d]: %w", cfg.Driver, i, err)
		}
		backends = append(backends, b)
	}
	return &sharded{backends: backends}, nil
}

// openBackend opens one database and applies the store's migrations to it.
func openBackend(ctx context.Context, driver, dsn string, maxConns int, d *dialect) (*backend, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{Driver: driver, DSN: dsn, MaxOpenConns: maxConns})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, migrationsFS(), migrationTable); err != nil {
		db.Close()
		return nil, err
	}
	return &backend{d: d, db: db, w: db.W, r: db.R}, nil
}
