package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migrations live in an fs.FS as <driver>/NNNN_name.sql, such as
// mysql/0001_users.sql and sqlite/0001_users.sql, and are applied in version
// order. Each file is a list of statements ended by ";" at the end of a
// line, with "--" comment lines; no statement may hold a ";" at the end of a
// line inside it. A migration, once released, is never edited: a change is
// a new file with the next number, and every statement should be safe to run
// twice (CREATE ... IF NOT EXISTS), because MySQL commits DDL at once and a
// crash can leave a migration applied but not recorded.

// Migration is one file of migrations.
type Migration struct {
	Version int      // from the file name's leading number, positive
	Name    string   // the file name, for errors
	Stmts   []string // the statements, without their ";"
}

// LoadMigrations returns the migrations in the directory driver of fsys,
// in version order. Files not ending in ".sql" are ignored; a ".sql" file
// whose name does not start with a positive number and "_", or two files
// with one version, is an error.
func LoadMigrations(fsys fs.FS, driver string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, driver)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", name)
		}
		text, err := fs.ReadFile(fsys, driver+"/"+name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, Stmts: splitStatements(string(text))})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	return ms, nil
}

// splitStatements cuts a migration file into statements, dropping comment
// lines.
func splitStatements(text string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// checkTable accepts a version table name: a lower-case SQL identifier that
// needs no quoting on either engine.
func checkTable(table string) error {
	if table == "" || len(table) > 64 {
		return fmt.Errorf("version table %q: want 1 to 64 characters", table)
	}
	for i, c := range table {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("version table %q: want [a-z_][a-z0-9_]*", table)
		}
	}
	return nil
}

// createTableSQL returns the statement that creates the version table.
func (db *DB) createTableSQL(table string) string {
	if db.Driver == DriverSQLite {
		return "CREATE TABLE IF NOT EXISTS " + table + " (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT"
	}
	return "CREATE TABLE IF NOT EXISTS " + table + " (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE = InnoDB"
}

// Migrate applies the migrations in the directory db.Driver of fsys that
// table does not record yet, creating table if it is missing. table holds
// one row (version, applied_at in unix microseconds) per applied
// migration; each component names its own, such as "account_migrations",
// so components sharing a database keep separate histories. It must be a
// lower-case identifier ([a-z_][a-z0-9_]*, at most 64 characters).
//
// Migrate is idempotent, and concurrent migrators of one database, in this
// process or others, are serialised: on MySQL by an advisory lock per
// database (GET_LOCK, waiting up to 60 s), on SQLite by each migration's
// own transaction (BEGIN IMMEDIATE), inside which the version is checked
// again. Versions recorded in table but not in fsys (a newer binary ran)
// are left alone.
func (db *DB) Migrate(ctx context.Context, fsys fs.FS, table string) error {
	if err := checkTable(table); err != nil {
		return fmt.Errorf("sqldb: migrate: %w", err)
	}
	ms, err := LoadMigrations(fsys, db.Driver)
	if err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", table, err)
	}
	if err := db.migrate(ctx, ms, table); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", table, err)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context, ms []Migration, table string) error {
	c, err := db.W.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if db.Driver == DriverMySQL {
		unlock, err := lockMySQLMigrations(ctx, c)
		if err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer unlock()
	}
	if _, err := c.ExecContext(ctx, db.createTableSQL(table)); err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, c, table, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// applyMigration runs m in one transaction, unless table records it
// already. On MySQL each DDL statement commits on its own, so there the
// transaction only covers what follows the last one, typically the version
// row.
func applyMigration(ctx context.Context, c *sql.Conn, table string, m Migration) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE version = ?", m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for i, s := range m.Stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (version, applied_at) VALUES (?, ?)", m.Version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// Versions returns the versions that table records, in order; none if
// table does not exist yet.
func (db *DB) Versions(ctx context.Context, table string) ([]int, error) {
	if err := checkTable(table); err != nil {
		return nil, fmt.Errorf("sqldb: versions: %w", err)
	}
	var exists int
	var q string
	if db.Driver == DriverSQLite {
		q = "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?"
	} else {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	if err := db.R.QueryRowContext(ctx, q, table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("sqldb: versions %s: %w", table, err)
	}
	if exists == 0 {
		return nil, nil
	}
	rows, err := db.R.QueryContext(ctx, "SELECT version FROM "+table+" ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("sqldb: versions %s: %w", table, err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqldb: versions %s: %w", table, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldb: versions %s: %w", table, err)
	}
	return vs, nil
}
