package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
)

func TestOpenInvalid(t *testing.T) {
	f := func(cfg sqldb.Config, wantErr string) {
		t.Helper()
		db, err := sqldb.Open(context.Background(), cfg)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v): no error", cfg)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Open(%+v): %v, want %q", cfg, err, wantErr)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%+v): the error quotes the DSN: %v", cfg, err)
		}
	}
	f(sqldb.Config{DSN: "x"}, "Driver is empty")
	f(sqldb.Config{Driver: "postgres", DSN: "x"}, "unknown Config.Driver")
	f(sqldb.Config{Driver: sqldb.DriverSQLite}, "DSN is empty")
	f(sqldb.Config{Driver: sqldb.DriverSQLite, DSN: "a.db?_pragma=x"}, "plain sqlite file path")
	f(sqldb.Config{Driver: sqldb.DriverSQLite, DSN: ":memory:"}, "plain sqlite file path")
	f(sqldb.Config{Driver: sqldb.DriverSQLite, DSN: "a.db", MaxOpenConns: -1}, "negative")
	f(sqldb.Config{Driver: sqldb.DriverMySQL, DSN: "root:secret@tcp(127.0.0.1:1)/"}, "names no database")
}

const kvSchema = "CREATE TABLE IF NOT EXISTS kv (k VARCHAR(64) NOT NULL PRIMARY KEY, u VARCHAR(64) NOT NULL, v VARCHAR(64) NOT NULL);\nCREATE UNIQUE INDEX kv_u ON kv (u);\n"

func newKV(t *testing.T, driver string) *sqldb.DB {
	t.Helper()
	db := sqldbtest.New(t, driver)
	migrate(t, db, migrations(map[string]string{"0001_kv.sql": kvSchema}), "kv_migrations")
	return db
}

func TestIsDuplicate(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := newKV(t, driver)
		ins := func(k, u string, v any) error {
			_, err := db.W.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES (?, ?, ?)", k, u, v)
			return err
		}
		if err := ins("a", "ua", "1"); err != nil {
			t.Fatal(err)
		}
		f := func(err error, dup bool) {
			t.Helper()
			if err == nil {
				t.Fatal("no error")
			}
			wrapped := fmt.Errorf("insert: %w", err)
			if got := sqldb.IsDuplicate(wrapped); got != dup {
				t.Errorf("IsDuplicate(%v) = %v, want %v", err, got, dup)
			}
			if got := sqldb.IsConflict(wrapped); got != dup {
				t.Errorf("IsConflict(%v) = %v, want %v", err, got, dup)
			}
			if sqldb.IsDeadlock(wrapped) {
				t.Errorf("IsDeadlock(%v) = true", err)
			}
		}
		f(ins("a", "ub", "2"), true)  // primary key
		f(ins("b", "ua", "2"), true)  // unique index
		f(ins("c", "uc", nil), false) // NOT NULL
		_, err := db.W.ExecContext(ctx, "SELECT * FROM missing")
		f(err, false)
		if sqldb.IsDuplicate(nil) || sqldb.IsConflict(nil) || sqldb.IsDeadlock(nil) {
			t.Error("nil classified as an error")
		}
		if sqldb.IsDuplicate(errors.New("Duplicate entry")) {
			t.Error("a plain error classified as a duplicate")
		}
	})
}

// TestIsDeadlock provokes a real InnoDB deadlock between two transactions
// that lock two rows in opposite orders.
func TestIsDeadlock(t *testing.T) {
	db := newKV(t, sqldb.DriverMySQL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.W.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES ('a', 'ua', ''), ('b', 'ub', '')"); err != nil {
		t.Fatal(err)
	}
	tx1, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	tx2, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	upd := func(tx *sql.Tx, k string) error {
		_, err := tx.ExecContext(ctx, "UPDATE kv SET v = 'x' WHERE k = ?", k)
		return err
	}
	if err := upd(tx1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := upd(tx2, "b"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var err1 error
	wg.Go(func() { err1 = upd(tx1, "b") }) // waits for tx2
	err2 := upd(tx2, "a")                  // closes the cycle
	if err2 != nil {
		tx2.Rollback() // let tx1 through if InnoDB picked tx2
	}
	wg.Wait()
	victim := err1
	if err2 != nil {
		victim = err2
	}
	if err1 != nil && err2 != nil {
		t.Fatalf("both failed: %v; %v", err1, err2)
	}
	if !sqldb.IsDeadlock(victim) || !sqldb.IsConflict(victim) || sqldb.IsDuplicate(victim) {
		t.Errorf("deadlock victim's error %v: IsDeadlock %v, IsConflict %v, IsDuplicate %v",
			victim, sqldb.IsDeadlock(victim), sqldb.IsConflict(victim), sqldb.IsDuplicate(victim))
	}
}

func TestTx(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := newKV(t, driver)

		// A deadlock reruns fn in a new transaction; the first run's
		// writes are rolled back.
		runs := 0
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			runs++
			if _, err := tx.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES ('a', 'ua', ?)", fmt.Sprint(runs)); err != nil {
				return err
			}
			if runs == 1 {
				return fmt.Errorf("update: %w", &mysql.MySQLError{Number: 1213, Message: "Deadlock found"})
			}
			return nil
		})
		if err != nil || runs != 2 {
			t.Fatalf("Tx: %v after %d runs, want nil after 2", err, runs)
		}
		var v string
		if err := db.R.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = 'a'").Scan(&v); err != nil || v != "2" {
			t.Errorf("after Tx: v %q, %v; want the second run's", v, err)
		}

		// fn's own error comes back as it is, and its writes are undone.
		errMine := errors.New("mine")
		runs = 0
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			runs++
			if _, err := tx.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES ('b', 'ub', '')"); err != nil {
				return err
			}
			return errMine
		})
		if err != errMine || runs != 1 {
			t.Errorf("Tx: %v after %d runs, want errMine after 1", err, runs)
		}
		var n int
		if err := db.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv WHERE k = 'b'").Scan(&n); err != nil || n != 0 {
			t.Errorf("rolled back row: %d, %v", n, err)
		}

		// Deadlocks every time: gives up after 3 runs.
		runs = 0
		err = db.Tx(ctx, func(*sql.Tx) error {
			runs++
			return &mysql.MySQLError{Number: 1213}
		})
		if !sqldb.IsDeadlock(err) || runs != 3 {
			t.Errorf("Tx: %v after %d runs, want a deadlock after 3", err, runs)
		}
	})
}

// TestSQLitePools: the reader pool refuses writes, and sees the writer's
// commits.
func TestSQLitePools(t *testing.T) {
	ctx := context.Background()
	db := newKV(t, sqldb.DriverSQLite)
	if db.R == db.W {
		t.Fatal("sqlite R and W are one pool")
	}
	if _, err := db.R.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES ('a', 'ua', '')"); err == nil {
		t.Error("write through R succeeded")
	}
	if _, err := db.W.ExecContext(ctx, "INSERT INTO kv (k, u, v) VALUES ('a', 'ua', '')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv").Scan(&n); err != nil || n != 1 {
		t.Errorf("R sees %d rows, %v", n, err)
	}
	var mode string
	if err := db.R.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Error(err)
	}

	// Foreign keys are enforced, as on InnoDB.
	if _, err := db.W.ExecContext(ctx, "CREATE TABLE child (k VARCHAR(64) NOT NULL REFERENCES kv (k))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, "INSERT INTO child (k) VALUES ('missing')"); err == nil {
		t.Error("a dangling reference was accepted")
	} else if sqldb.IsDuplicate(err) {
		t.Errorf("IsDuplicate(%v) = true", err)
	}
}

func TestPlaceholders(t *testing.T) {
	f := func(n, cols int, want string) {
		t.Helper()
		if got := sqldb.Placeholders(n, cols); got != want {
			t.Errorf("Placeholders(%d, %d) = %q, want %q", n, cols, got, want)
		}
	}
	f(1, 1, "(?)")
	f(2, 2, "(?,?),(?,?)")
	f(3, 1, "(?),(?),(?)")
	f(1, 3, "(?,?,?)")
	f(0, 2, "")
	f(2, 0, "")

	g := func(n int, want string) {
		t.Helper()
		if got := sqldb.Marks(n); got != want {
			t.Errorf("Marks(%d) = %q, want %q", n, got, want)
		}
	}
	g(0, "")
	g(1, "?")
	g(3, "?,?,?")
}
