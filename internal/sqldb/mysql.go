package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB, through github.com/go-sql-driver/mysql.
//
// W and R are one pool. interpolateParams is on unless the DSN sets it: the
// driver then sends each statement as one text query instead of prepare,
// execute and close, three round trips. That is safe because the
// connection's character set is utf8mb4 (the driver refuses to interpolate
// under the multibyte character sets where escaping is unsafe) and it
// escapes []byte as binary strings. Connections live at most 3 minutes,
// below any server or proxy idle timeout, as the driver advises.

// openMySQL connects to the database that dsn names.
func openMySQL(ctx context.Context, dsn string, maxConns int) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, errors.New("mysql DSN names no database")
	}
	if _, params, _ := strings.Cut(dsn, "?"); !strings.Contains(params, "interpolateParams=") {
		cfg.InterpolateParams = true
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(3 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &DB{Driver: DriverMySQL, W: db, R: db}, nil
}

// mysqlMigrationLock names a server-wide advisory lock for the current
// database (GET_LOCK names are server-wide and at most 64 characters long).
// It is one lock per database, whatever the version table: components
// migrating one database take turns.
const mysqlMigrationLock = "CONCAT('surge_migrate_', MD5(DATABASE()))"

// lockMySQLMigrations holds an advisory lock on c so that processes opening
// one database at once migrate it one after the other.
func lockMySQLMigrations(ctx context.Context, c *sql.Conn) (func(), error) {
	var got sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK("+mysqlMigrationLock+", 60)").Scan(&got); err != nil {
		return nil, err
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, fmt.Errorf("GET_LOCK timed out")
	}
	return func() {
		// The lock belongs to the session, which outlives c's return to the
		// pool: release it explicitly, even if ctx is done.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.ExecContext(ctx, "DO RELEASE_LOCK("+mysqlMigrationLock+")")
	}, nil
}

// mysqlNumber returns the server error number of a MySQL error.
func mysqlNumber(err error) (uint16, bool) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return 0, false
	}
	return me.Number, true
}
