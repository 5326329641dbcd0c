package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schema migrations live in migrations/<driver>/NNNN_name.sql and are
// applied in version order at Open. Each file is a list of statements ended
// by ";" at the end of a line, with "--" comment lines; no statement may hold
// a ";" at the end of a line inside it. A migration, once released, is never
// edited: a change is a new file with the next number, and every statement
// should be safe to run twice (CREATE ... IF NOT EXISTS), because MySQL
// commits DDL at once and a crash can leave a migration applied but not
// recorded.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name, for errors
	stmts   []string
}

// loadMigrations returns the migrations of driver in version order.
func loadMigrations(driver string) ([]migration, error) {
	dir := path.Join("migrations", driver)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
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
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, stmts: splitStatements(string(text))})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
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

// migrate applies the migrations of b's driver that the database has not
// recorded in schema_migrations. Concurrent migrators of one database, in
// this process or others, are serialised: by the dialect's lock where it
// has one, and otherwise by the migration's own transaction (SQLite's
// BEGIN IMMEDIATE), inside which the version is checked again.
func (b *backend) migrate(ctx context.Context) error {
	ms, err := loadMigrations(b.d.name)
	if err != nil {
		return err
	}
	c, err := b.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if b.d.lockMigrations != nil {
		unlock, err := b.d.lockMigrations(ctx, c)
		if err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer unlock()
	}
	if _, err := c.ExecContext(ctx, b.d.schemaTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, c, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// applyMigration runs m in one transaction, unless it is recorded already.
// On MySQL each DDL statement commits on its own, so there the transaction
// only covers what follows the last one, typically the version row.
func applyMigration(ctx context.Context, c *sql.Conn, m migration) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for i, s := range m.stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
