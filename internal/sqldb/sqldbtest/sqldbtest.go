// Package sqldbtest gives tests fresh databases on both sqldb drivers: a
// SQLite file in a temporary directory, and a new database on the MySQL
// server that SURGE_TEST_MYSQL_DSN names (tests of that driver skip when it
// is unset). Every database is dropped, or its file removed, when the test
// ends.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/surgechat/surge/internal/sqldb"
)

// EnvMySQLDSN names the environment variable that points the MySQL tests at
// a server, as a DSN without a database, such as "root@tcp(127.0.0.1:3306)/".
// The user must be allowed to create and drop databases.
const EnvMySQLDSN = "SURGE_TEST_MYSQL_DSN"

// Drivers lists the drivers that ForEachDriver runs.
var Drivers = []string{sqldb.DriverSQLite, sqldb.DriverMySQL}

// ForEachDriver runs f as a subtest per driver, named after it. The mysql
// subtest skips when EnvMySQLDSN is unset.
func ForEachDriver(t *testing.T, f func(t *testing.T, driver string)) {
	for _, d := range Drivers {
		t.Run(d, func(t *testing.T) {
			if d == sqldb.DriverMySQL {
				mysqlServer(t) // skips early
			}
			f(t, d)
		})
	}
}

// NewDSN returns the DSN of a fresh, empty database of driver, removed when
// tb's test ends. For mysql it skips tb if EnvMySQLDSN is unset.
func NewDSN(tb testing.TB, driver string) string {
	tb.Helper()
	switch driver {
	case sqldb.DriverSQLite:
		return filepath.Join(tb.TempDir(), "db"+randomHex(4)+".sqlite")
	case sqldb.DriverMySQL:
		base := mysqlServer(tb)
		name := "surge_t_" + randomHex(8)
		adminExec(tb, base, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
		tb.Cleanup(func() { adminExec(tb, base, "DROP DATABASE IF EXISTS "+name) })
		cfg := base.Clone()
		cfg.DBName = name
		return cfg.FormatDSN()
	}
	tb.Fatalf("sqldbtest: unknown driver %q", driver)
	return ""
}

// Open opens dsn with driver, closed when tb's test ends.
func Open(tb testing.TB, driver, dsn string) *sqldb.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqldb.Open(ctx, sqldb.Config{Driver: driver, DSN: dsn})
	if err != nil {
		tb.Fatalf("open %s: %v", driver, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// New opens a fresh, empty database of driver, closed and removed when
// tb's test ends.
func New(tb testing.TB, driver string) *sqldb.DB {
	tb.Helper()
	return Open(tb, driver, NewDSN(tb, driver))
}

// mysqlServer returns the parsed EnvMySQLDSN, or skips tb.
func mysqlServer(tb testing.TB) *mysql.Config {
	tb.Helper()
	server := os.Getenv(EnvMySQLDSN)
	if server == "" {
		tb.Skipf("MySQL tests skipped: set %s to a server DSN, e.g. %s='root@tcp(127.0.0.1:3306)/'", EnvMySQLDSN, EnvMySQLDSN)
	}
	base, err := mysql.ParseDSN(server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvMySQLDSN, err)
	}
	return base
}

// adminExec runs query on the server of base, outside any database.
func adminExec(tb testing.TB, base *mysql.Config, query string) {
	tb.Helper()
	cfg := base.Clone()
	cfg.DBName = ""
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("mysql admin: %v", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, query); err != nil {
		tb.Fatalf("mysql admin: %s: %v", query, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
