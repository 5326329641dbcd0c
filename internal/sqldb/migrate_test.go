package sqldb_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
)

// migrations builds a migrations FS holding, for both drivers, one file
// per entry of files ("0001_users.sql" -> SQL).
func migrations(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, text := range files {
		for _, d := range sqldbtest.Drivers {
			fsys[d+"/"+name] = &fstest.MapFile{Data: []byte(text)}
		}
	}
	return fsys
}

var accountV1 = map[string]string{
	"0001_users.sql": `-- users
CREATE TABLE IF NOT EXISTS users (
    id   VARCHAR(64) NOT NULL PRIMARY KEY,
    name VARCHAR(64) NOT NULL
);
CREATE UNIQUE INDEX users_name ON users (name);`,
	"0002_profiles.sql": "CREATE TABLE IF NOT EXISTS profiles (id VARCHAR(64) NOT NULL PRIMARY KEY, bio VARCHAR(255) NOT NULL);\n",
	"README.md":         "ignored",
}

var socialV1 = map[string]string{
	"0001_friends.sql": "CREATE TABLE IF NOT EXISTS friends (a VARCHAR(64) NOT NULL, b VARCHAR(64) NOT NULL, PRIMARY KEY (a, b));\n",
}

func versions(t *testing.T, db *sqldb.DB, table string) []int {
	t.Helper()
	vs, err := db.Versions(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func migrate(t *testing.T, db *sqldb.DB, fsys fstest.MapFS, table string) {
	t.Helper()
	if err := db.Migrate(context.Background(), fsys, table); err != nil {
		t.Fatalf("Migrate %s: %v", table, err)
	}
}

// TestMigrateOnce: migrations run once, recorded in the caller's table, and
// running them again changes nothing.
func TestMigrateOnce(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := sqldbtest.New(t, driver)
		if vs := versions(t, db, "account_migrations"); vs != nil {
			t.Fatalf("before Migrate: %v", vs)
		}
		fsys := migrations(accountV1)
		migrate(t, db, fsys, "account_migrations")
		if _, err := db.W.ExecContext(ctx, "INSERT INTO users (id, name) VALUES ('u1', 'alice')"); err != nil {
			t.Fatal(err)
		}
		// The second run would fail on CREATE UNIQUE INDEX (no IF NOT
		// EXISTS) if it ran the migration again.
		migrate(t, db, fsys, "account_migrations")
		if got := versions(t, db, "account_migrations"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("account_migrations holds %v, want [1 2]", got)
		}
		if vs := versions(t, db, "schema_migrations"); vs != nil {
			t.Errorf("schema_migrations exists: %v", vs)
		}
		var n int
		if err := db.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != 1 {
			t.Errorf("users: %d rows, %v", n, err)
		}
	})
}

// TestMigrateSharedDatabase: two components migrating one database keep
// separate histories, and each later migration lands in its own.
func TestMigrateSharedDatabase(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		dsn := sqldbtest.NewDSN(t, driver)
		account := sqldbtest.Open(t, driver, dsn)
		social := sqldbtest.Open(t, driver, dsn)

		migrate(t, account, migrations(accountV1), "account_migrations")
		migrate(t, social, migrations(socialV1), "social_migrations")

		socialV2 := map[string]string{"0002_blocks.sql": "CREATE TABLE IF NOT EXISTS blocks (a VARCHAR(64) NOT NULL, b VARCHAR(64) NOT NULL, PRIMARY KEY (a, b));\n"}
		for k, v := range socialV1 {
			socialV2[k] = v
		}
		migrate(t, social, migrations(socialV2), "social_migrations")
		// The account component's version 2 is not the social one's.
		migrate(t, account, migrations(accountV1), "account_migrations")

		if got := versions(t, account, "account_migrations"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("account_migrations holds %v, want [1 2]", got)
		}
		if got := versions(t, social, "social_migrations"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("social_migrations holds %v, want [1 2]", got)
		}
		for _, table := range []string{"users", "profiles", "friends", "blocks"} {
			if _, err := account.R.ExecContext(ctx, "SELECT COUNT(*) FROM "+table); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})
}

// TestReopen: closing and reopening a migrated database, and migrating it
// from two handles at once, keeps data and records each version once.
func TestReopen(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		dsn := sqldbtest.NewDSN(t, driver)
		fsys := migrations(accountV1)

		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() {
				db, err := sqldb.Open(ctx, sqldb.Config{Driver: driver, DSN: dsn})
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				errs[i] = db.Migrate(ctx, fsys, "account_migrations")
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("concurrent Open and Migrate: %v", err)
			}
		}

		db := sqldbtest.Open(t, driver, dsn)
		if _, err := db.W.ExecContext(ctx, "INSERT INTO users (id, name) VALUES ('u1', 'alice')"); err != nil {
			t.Fatal(err)
		}
		db.Close()

		db = sqldbtest.Open(t, driver, dsn)
		migrate(t, db, fsys, "account_migrations")
		var name string
		if err := db.R.QueryRowContext(ctx, "SELECT name FROM users WHERE id = 'u1'").Scan(&name); err != nil || name != "alice" {
			t.Errorf("after reopening: name %q, %v", name, err)
		}
		if got := versions(t, db, "account_migrations"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("account_migrations holds %v, want [1 2]", got)
		}
	})
}

// TestMigrateFailure: a failing migration is not recorded, and the fixed
// file applies on the next run.
func TestMigrateFailure(t *testing.T) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := sqldbtest.New(t, driver)
		bad := map[string]string{"0001_t.sql": "CREATE TABLE IF NOT EXISTS t (id INTEGER NOT NULL PRIMARY KEY);\nNOT SQL AT ALL;\n"}
		err := db.Migrate(context.Background(), migrations(bad), "t_migrations")
		if err == nil || !strings.Contains(err.Error(), "0001_t.sql: statement 2") {
			t.Fatalf("Migrate of a bad file: %v", err)
		}
		if vs := versions(t, db, "t_migrations"); len(vs) != 0 {
			t.Fatalf("t_migrations holds %v after a failure", vs)
		}
		good := map[string]string{"0001_t.sql": "CREATE TABLE IF NOT EXISTS t (id INTEGER NOT NULL PRIMARY KEY);\n"}
		migrate(t, db, migrations(good), "t_migrations")
		if got := versions(t, db, "t_migrations"); !slices.Equal(got, []int{1}) {
			t.Errorf("t_migrations holds %v, want [1]", got)
		}
	})
}

func TestMigrateBadTable(t *testing.T) {
	db := sqldbtest.New(t, sqldb.DriverSQLite)
	for _, table := range []string{"", "Users", "1abc", "a-b", "x; DROP TABLE y", strings.Repeat("a", 65)} {
		if err := db.Migrate(context.Background(), migrations(socialV1), table); err == nil {
			t.Errorf("Migrate into %q: no error", table)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"sqlite/0002_b.sql":   {Data: []byte("-- comment\nCREATE TABLE b (x INTEGER);\n\nCREATE TABLE c (\n  y INTEGER\n);\nINSERT INTO b VALUES (1)")},
		"sqlite/0001_a.sql":   {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"sqlite/notes.txt":    {Data: []byte("ignored")},
		"sqlite/sub/0003.sql": {Data: []byte("ignored: in a subdirectory")},
	}
	ms, err := sqldb.LoadMigrations(fsys, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[1].Version != 2 || ms[1].Name != "0002_b.sql" {
		t.Fatalf("LoadMigrations = %+v", ms)
	}
	want := []string{"CREATE TABLE b (x INTEGER)", "CREATE TABLE c (\n  y INTEGER\n)", "INSERT INTO b VALUES (1)"}
	if !slices.Equal(ms[1].Stmts, want) {
		t.Errorf("statements %q, want %q", ms[1].Stmts, want)
	}

	f := func(files fstest.MapFS, wantErr string) {
		t.Helper()
		_, err := sqldb.LoadMigrations(files, "mysql")
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("LoadMigrations: %v, want an error with %q", err, wantErr)
		}
	}
	f(fstest.MapFS{"mysql/a_b.sql": {}}, "positive version")
	f(fstest.MapFS{"mysql/0000_b.sql": {}}, "positive version")
	f(fstest.MapFS{"mysql/0001.sql": {}}, "positive version")
	f(fstest.MapFS{"mysql/0001_a.sql": {}, "mysql/1_b.sql": {}}, "share version 1")
	f(fstest.MapFS{"sqlite/0001_a.sql": {}}, "not exist")
}
