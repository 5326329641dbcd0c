package social

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/services/social/socialpb"
)

// The schema is in migrations/<driver>/NNNN_name.sql; tables:
// friend_requests, friends (both directions), blocks, social_groups,
// group_members, and on MySQL pair_locks.
//
// Concurrency. Every multi-row change is one transaction (sqldb.DB.Tx,
// which reruns it after an InnoDB deadlock). On SQLite the writer is one
// connection, so write transactions run one at a time and see each other.
// On MySQL (REPEATABLE READ) two locks order them instead:
//   - a transaction that changes a group locks its social_groups row first
//     (loadGroup, SELECT ... FOR UPDATE);
//   - a transaction that changes the requests, friendship or blocks
//     between two users locks their pair_locks row first (pairTx).
//
// The lock is the transaction's first statement and every later read is a
// plain one, so the transaction's snapshot is taken after the lock is held
// and sees every change committed under it. Under the lock the
// transaction touches rows by primary key only, deleting or inserting
// only rows it has seen to exist or not: no locking reads, no range
// deletes of the pair tables, no duplicate-key errors, hence no gap locks,
// which would make concurrent inserts of unrelated pairs deadlock.
// Changes of one group or one pair run one at a time, so size limits,
// versions and the pair rules are race-free.

//go:embed migrations
var migrations embed.FS

// migrationTable records the applied social migrations.
const migrationTable = "social_migrations"

func migrate(ctx context.Context, db *sqldb.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return db.Migrate(ctx, sub, migrationTable)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// now returns the time stored in rows: unix milliseconds.
func now() int64 { return time.Now().UnixMilli() }

// forUpdate returns the suffix that makes a SELECT a locking read on MySQL
// if lock is set. SQLite has none and needs none: its writer holds the
// database's lock for the whole transaction.
func (s *Service) forUpdate(lock bool) string {
	if lock && s.db.Driver == sqldb.DriverMySQL {
		return " FOR UPDATE"
	}
	return ""
}

// pairTx runs fn in a transaction that holds the lock of the pair of users
// a and b (see the top of the file). On SQLite it is db.Tx.
func (s *Service) pairTx(ctx context.Context, a, b string, fn func(tx *sql.Tx) error) error {
	if s.db.Driver != sqldb.DriverMySQL {
		return s.db.Tx(ctx, fn)
	}
	lo, hi := min(a, b), max(a, b)
	// Make sure the row exists, outside the transaction: locking a missing
	// row would lock a gap. A concurrent first insert of the same pair may
	// deadlock; it is idempotent, so try again.
	var err error
	for range 3 {
		_, err = s.db.W.ExecContext(ctx, "INSERT IGNORE INTO pair_locks (user_lo, user_hi) VALUES (?, ?)", lo, hi)
		if !sqldb.IsDeadlock(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("pair lock: %w", err)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM pair_locks WHERE user_lo = ? AND user_hi = ? FOR UPDATE", lo, hi)
		switch {
		case err != nil:
			return fmt.Errorf("pair lock: %w", err)
		case !ok:
			return errors.New("pair lock: row missing")
		}
		return fn(tx)
	})
}

// exists runs a query that returns at most one row and reports whether it
// did.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// blockedEither reports whether a blocks b or b blocks a.
func blockedEither(ctx context.Context, q querier, a, b string) (bool, error) {
	ok, err := exists(ctx, q, "SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?", a, b)
	if err != nil || ok {
		return ok, err
	}
	return exists(ctx, q, "SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?", b, a)
}

// friendsSince returns since when a and b are friends, or ok false.
func friendsSince(ctx context.Context, q querier, a, b string) (since int64, ok bool, err error) {
	err = q.QueryRowContext(ctx, "SELECT since FROM friends WHERE user_a = ? AND user_b = ?", a, b).Scan(&since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return since, true, nil
}

// deleteRow deletes the row of table whose primary key (ca, cb) is (a, b),
// if there is one (looking first, so as to delete by key only rows that
// exist: see the top of the file), and reports whether there was.
func deleteRow(ctx context.Context, tx *sql.Tx, table, ca, cb, a, b string) (bool, error) {
	where := " FROM " + table + " WHERE " + ca + " = ? AND " + cb + " = ?"
	ok, err := exists(ctx, tx, "SELECT 1"+where, a, b)
	if err != nil || !ok {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE"+where, a, b); err != nil {
		return false, fmt.Errorf("delete from %s: %w", table, err)
	}
	return true, nil
}

// deletePair deletes the rows (a, b) and (b, a) of table (see deleteRow),
// and returns how many there were.
func deletePair(ctx context.Context, tx *sql.Tx, table, ca, cb, a, b string) (int, error) {
	n := 0
	for _, k := range [2][2]string{{a, b}, {b, a}} {
		ok, err := deleteRow(ctx, tx, table, ca, cb, k[0], k[1])
		if err != nil {
			return 0, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// groupRow is one live row of social_groups.
type groupRow struct {
	id, name, description, owner string
	memberCount                  int
	version, createdAt           int64
}

func (g *groupRow) proto(myRole string) *socialpb.Group {
	return &socialpb.Group{
		Id:          g.id,
		Name:        g.name,
		Description: g.description,
		Owner:       g.owner,
		MemberCount: int32(g.memberCount),
		CreatedAt:   g.createdAt,
		Version:     g.version,
		MyRole:      myRole,
	}
}

const groupColumns = "id, name, description, owner, member_count, version, created_at"

// loadGroup reads the live (not disbanded) group id, locking its row if
// lock is set (on MySQL; see the comment at the top). It fails with
// errNoSuchGroup if there is none.
func (s *Service) loadGroup(ctx context.Context, q querier, id string, lock bool) (*groupRow, error) {
	query := "SELECT " + groupColumns + " FROM social_groups WHERE id = ? AND disbanded_at IS NULL"
	query += s.forUpdate(lock)
	var g groupRow
	err := q.QueryRowContext(ctx, query, id).Scan(&g.id, &g.name, &g.description, &g.owner, &g.memberCount, &g.version, &g.createdAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errNoSuchGroup
	case err != nil:
		return nil, fmt.Errorf("load group: %w", err)
	}
	return &g, nil
}

// roleOf returns user's role in group, or "" if user is not a member.
func roleOf(ctx context.Context, q querier, group, user string) (string, error) {
	var role string
	err := q.QueryRowContext(ctx, "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", group, user).Scan(&role)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("member role: %w", err)
	}
	return role, nil
}

// bumpGroup sets the group's member count to count and increments its
// version, in the database and in g. The caller holds the row's lock.
func bumpGroup(ctx context.Context, tx *sql.Tx, g *groupRow, count int) error {
	if _, err := tx.ExecContext(ctx, "UPDATE social_groups SET member_count = ?, version = version + 1 WHERE id = ?", count, g.id); err != nil {
		return fmt.Errorf("bump group: %w", err)
	}
	g.memberCount = count
	g.version++
	return nil
}

// scanStrings reads a one-column result of strings.
func scanStrings(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
