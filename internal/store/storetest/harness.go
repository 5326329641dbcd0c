package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/surgechat/surge/internal/store"
)

// EnvMySQLDSN names the environment variable that points the MySQL tests at
// a server, as a DSN without a database, such as "root@tcp(127.0.0.1:3306)/".
// The user must be allowed to create and drop databases.
const EnvMySQLDSN = "SURGE_TEST_MYSQL_DSN"

// Harness tells Run how to make databases for one driver.
type Harness struct {
	// Driver is the store.Config.Driver to open stores with.
	Driver string

	// NewDSNs returns n DSNs of fresh, empty databases, dropped when tb's
	// test ends.
	NewDSNs func(tb testing.TB, n int) []string
}

// Open opens a Store over dsns, closed when tb's test ends.
func (h Harness) Open(tb testing.TB, dsns ...string) store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Driver: h.Driver, DSNs: dsns})
	if err != nil {
		tb.Fatalf("open %s store: %v", h.Driver, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// SQLite returns the harness of the sqlite driver: files in temporary
// directories.
func SQLite() Harness {
	return Harness{
		Driver: store.DriverSQLite,
		NewDSNs: func(tb testing.TB, n int) []string {
			dir := tb.TempDir()
			dsns := make([]string, n)
			for i := range dsns {
				dsns[i] = filepath.Join(dir, fmt.Sprintf("inbox%d.db", i))
			}
			return dsns
		},
	}
}

// MySQL returns the harness of the mysql driver on the server that
// EnvMySQLDSN names, or skips tb if it is unset. Each DSN names a new
// database surge_t_<random hex>.
func MySQL(tb testing.TB) Harness {
	tb.Helper()
	server := os.Getenv(EnvMySQLDSN)
	if server == "" {
		tb.Skipf("MySQL tests skipped: set %s to a server DSN, e.g. %s='root@tcp(127.0.0.1:3306)/'", EnvMySQLDSN, EnvMySQLDSN)
	}
	base, err := mysql.ParseDSN(server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvMySQLDSN, err)
	}
	return Harness{
		Driver: store.DriverMySQL,
		NewDSNs: func(tb testing.TB, n int) []string {
			tb.Helper()
			dsns := make([]string, n)
			for i := range dsns {
				name := "surge_t_" + randomHex(8)
				adminExec(tb, base, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
				tb.Cleanup(func() { adminExec(tb, base, "DROP DATABASE IF EXISTS "+name) })
				cfg := base.Clone()
				cfg.DBName = name
				dsns[i] = cfg.FormatDSN()
			}
			return dsns
		},
	}
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
