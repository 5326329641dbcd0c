package account

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/surgechat/surge/internal/sqldb"
)

// migrationsDir holds the schema, per driver: migrations/<driver>/NNNN_name.sql
// (see internal/sqldb).
//
//go:embed migrations
var migrationsDir embed.FS

// migrations is migrationsDir's "migrations" folder, as sqldb.Migrate wants.
func migrations() fs.FS {
	sub, err := fs.Sub(migrationsDir, "migrations")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return sub
}

// migrationsTable records which migrations ran.
const migrationsTable = "account_migrations"

var (
	errUserExists   = errors.New("account: user exists")
	errUserNotFound = errors.New("account: user not found")
	errTokenUnknown = errors.New("account: refresh token unknown")
)

// userRow is a row of users.
type userRow struct {
	ID           string
	PasswordHash string
	DisplayName  string
	Bio          string
	AvatarURL    string
	Roles        []string // sorted
	CreatedAt    int64    // unix ms
}

// tokenRow is a row of refresh_tokens.
type tokenRow struct {
	Hash      []byte // SHA-256 of the token
	UserID    string
	Family    []byte
	ExpiresAt int64 // unix ms
	UsedAt    sql.NullInt64
	RevokedAt sql.NullInt64
	CreatedAt int64
}

// db is the service's SQL: every statement is here, and runs on both
// drivers.
type db struct {
	*sqldb.DB
}

const userColumns = "id, password_hash, display_name, bio, avatar_url, roles, created_at"

func scanUser(row interface{ Scan(...any) error }) (userRow, error) {
	var u userRow
	var roles string
	err := row.Scan(&u.ID, &u.PasswordHash, &u.DisplayName, &u.Bio, &u.AvatarURL, &roles, &u.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errUserNotFound
	}
	u.Roles = splitRoles(roles)
	return u, err
}

func joinRoles(roles []string) string { return strings.Join(roles, ",") }

func splitRoles(s string) []string {
	if s == "" {
		return nil
	}
	r := strings.Split(s, ",")
	slices.Sort(r)
	return r
}

// createUser inserts u; errUserExists if its id is taken.
func (d *db) createUser(ctx context.Context, u userRow) error {
	_, err := d.W.ExecContext(ctx, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		u.ID, u.PasswordHash, u.DisplayName, u.Bio, u.AvatarURL, joinRoles(u.Roles), u.CreatedAt)
	if sqldb.IsDuplicate(err) {
		return errUserExists
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// user returns the user id; errUserNotFound if there is none.
func (d *db) user(ctx context.Context, id string) (userRow, error) {
	u, err := scanUser(d.R.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil && !errors.Is(err, errUserNotFound) {
		return u, fmt.Errorf("select user: %w", err)
	}
	return u, err
}

// profileUpdate holds the profile fields to change; nil leaves one as is.
type profileUpdate struct {
	DisplayName, Bio, AvatarURL *string
}

// updateProfile applies p to user id and returns the updated row.
func (d *db) updateProfile(ctx context.Context, id string, p profileUpdate) (userRow, error) {
	var u userRow
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?"+d.forUpdate(), id))
		if err != nil {
			return err
		}
		for _, f := range []struct{ dst, src *string }{{&u.DisplayName, p.DisplayName}, {&u.Bio, p.Bio}, {&u.AvatarURL, p.AvatarURL}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE users SET display_name = ?, bio = ?, avatar_url = ? WHERE id = ?",
			u.DisplayName, u.Bio, u.AvatarURL, id)
		return err
	})
	if err != nil && !errors.Is(err, errUserNotFound) {
		return u, fmt.Errorf("update profile: %w", err)
	}
	return u, err
}

// setRoles replaces the roles of user id and returns the updated row.
func (d *db) setRoles(ctx context.Context, id string, roles []string) (userRow, error) {
	var u userRow
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		// Read back rather than trust RowsAffected: MySQL counts changed
		// rows, not matched ones.
		if _, err := tx.ExecContext(ctx, "UPDATE users SET roles = ? WHERE id = ?", joinRoles(roles), id); err != nil {
			return err
		}
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
		return err
	})
	if err != nil && !errors.Is(err, errUserNotFound) {
		return u, fmt.Errorf("set roles: %w", err)
	}
	return u, err
}

// setPasswordHash replaces the password hash of user id if it is still
// old (a concurrent password change wins).
func (d *db) setPasswordHash(ctx context.Context, id, old, hash string) error {
	_, err := d.W.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", hash, id, old)
	if err != nil {
		return fmt.Errorf("update password hash: %w", err)
	}
	return nil
}

// forUpdate is the row lock suffix of a SELECT in a write transaction. On
// SQLite, transactions on W already hold the database's write lock.
func (d *db) forUpdate() string {
	if d.Driver == sqldb.DriverMySQL {
		return " FOR UPDATE"
	}
	return ""
}

func (d *db) insertToken(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, t tokenRow) error {
	_, err := q.ExecContext(ctx, "INSERT INTO refresh_tokens (hash, user_id, family, expires_at, used_at, revoked_at, created_at) VALUES (?, ?, ?, ?, NULL, NULL, ?)",
		t.Hash, t.UserID, t.Family, t.ExpiresAt, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// rotateOutcome says what rotate found.
type rotateOutcome int

const (
	rotated rotateOutcome = iota // the token was live: used now, next stored
	rotateExpired
	rotateRevoked
	rotateReused // the token was used before: its family is now revoked
)

// rotate marks the token hash used and stores next in its family, in one
// transaction, if the token is live at now (unix ms); next's UserID and
// Family are filled in from it. It returns the token's user. A token used
// before revokes its whole family (committed) and returns rotateReused.
// errTokenUnknown if no token has hash.
func (d *db) rotate(ctx context.Context, hash []byte, next *tokenRow, now int64) (userRow, rotateOutcome, error) {
	var u userRow
	var out rotateOutcome
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		var t tokenRow
		err := tx.QueryRowContext(ctx, "SELECT user_id, family, expires_at, used_at, revoked_at FROM refresh_tokens WHERE hash = ?"+d.forUpdate(), hash).
			Scan(&t.UserID, &t.Family, &t.ExpiresAt, &t.UsedAt, &t.RevokedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return errTokenUnknown
		}
		if err != nil {
			return err
		}
		switch {
		case t.RevokedAt.Valid:
			out = rotateRevoked
			return nil
		case t.UsedAt.Valid:
			out = rotateReused
			_, err := tx.ExecContext(ctx, "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", now, t.Family)
			return err
		case t.ExpiresAt <= now:
			out = rotateExpired
			return nil
		}
		out = rotated
		if _, err := tx.ExecContext(ctx, "UPDATE refresh_tokens SET used_at = ? WHERE hash = ?", now, hash); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", t.UserID))
		if err != nil {
			return err
		}
		next.UserID, next.Family = t.UserID, t.Family
		return d.insertToken(ctx, tx, *next)
	})
	if err != nil && !errors.Is(err, errTokenUnknown) {
		return u, out, fmt.Errorf("rotate refresh token: %w", err)
	}
	return u, out, err
}

// revokeFamily revokes, as of now, every token of the login that the
// token hash belongs to, if it belongs to user. errTokenUnknown if it does
// not exist or is another user's.
func (d *db) revokeFamily(ctx context.Context, user string, hash []byte, now int64) error {
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		var family []byte
		err := tx.QueryRowContext(ctx, "SELECT family FROM refresh_tokens WHERE hash = ? AND user_id = ?", hash, user).Scan(&family)
		if errors.Is(err, sql.ErrNoRows) {
			return errTokenUnknown
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", now, family)
		return err
	})
	if err != nil && !errors.Is(err, errTokenUnknown) {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	return err
}

// revokeUser revokes, as of now, every refresh token of user. Used ones
// are dead already but are marked too, so that presenting one later reads
// as revoked rather than as theft.
func (d *db) revokeUser(ctx context.Context, user string, now int64) error {
	_, err := d.W.ExecContext(ctx, "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", now, user)
	if err != nil {
		return fmt.Errorf("revoke user's refresh tokens: %w", err)
	}
	return nil
}

// deleteExpired deletes up to limit refresh tokens that expired before
// now and returns how many it deleted.
func (d *db) deleteExpired(ctx context.Context, now int64, limit int) (int64, error) {
	q := "DELETE FROM refresh_tokens WHERE expires_at < ? LIMIT ?"
	if d.Driver == sqldb.DriverSQLite {
		q = "DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens WHERE expires_at < ? LIMIT ?)"
	}
	res, err := d.W.ExecContext(ctx, q, now, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return res.RowsAffected()
}
