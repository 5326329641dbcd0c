package storetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
	"github.com/surgechat/surge/internal/store"
)

// EnvMySQLDSN names the environment variable that points the MySQL tests at
// a server, as a DSN without a database, such as "root@tcp(127.0.0.1:3306)/".
// The user must be allowed to create and drop databases.
const EnvMySQLDSN = sqldbtest.EnvMySQLDSN

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
func SQLite() Harness { return harness(store.DriverSQLite) }

// MySQL returns the harness of the mysql driver on the server that
// EnvMySQLDSN names, or skips tb if it is unset. Each DSN names a new
// database, dropped when the test ends.
func MySQL(tb testing.TB) Harness {
	tb.Helper()
	if os.Getenv(EnvMySQLDSN) == "" {
		tb.Skipf("MySQL tests skipped: set %s to a server DSN, e.g. %s='root@tcp(127.0.0.1:3306)/'", EnvMySQLDSN, EnvMySQLDSN)
	}
	return harness(store.DriverMySQL)
}

func harness(driver string) Harness {
	return Harness{
		Driver: driver,
		NewDSNs: func(tb testing.TB, n int) []string {
			tb.Helper()
			dsns := make([]string, n)
			for i := range dsns {
				dsns[i] = sqldbtest.NewDSN(tb, driver)
			}
			return dsns
		},
	}
}
