package store

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
// Isolation: Append runs at the server's default level, REPEATABLE READ
// unless the server is configured otherwise, and its correctness does not
// depend on the level. Its two SELECTs are plain consistent reads that lock
// nothing; the guard against forking a sequence is the unique keys, which
// InnoDB checks at INSERT against the latest committed (or locked) rows
// whatever the snapshot. A writer that read stale state therefore fails
// with a duplicate key and never stores a gap or a fork. READ COMMITTED
// would narrow the window a little (a fresh snapshot per statement) and
// take fewer gap locks when duplicates collide, but asking for it costs a
// SET TRANSACTION round trip per Append, and collisions only happen while a
// partition moves between shards.
//
// Errors mapped to ErrConflict: 1062 (duplicate key: on PRIMARY when another
// writer took one of our seqs, on inbox_msg when it stored one of our
// messages since we looked) and 1213 (deadlock between writers inserting
// into the same owners; InnoDB rolled this one back whole). After Append's
// own de-duplication both can only come from a concurrent writer.
//
// interpolateParams is on unless the DSN sets it: the driver then sends each
// statement as one text query instead of prepare, execute and close, three
// round trips. That is safe because the connection's character set is
// utf8mb4 (the driver refuses to interpolate under the multibyte character
// sets where escaping is unsafe) and it escapes []byte as binary strings.
var mysqlDialect = dialect{
	name:        DriverMySQL,
	schemaTable: "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE = InnoDB",

	// A row constructor IN list: a range scan of exact (msg_id, owner)
	// points on inbox_msg. Separate IN lists on both columns would make
	// the optimizer consider their cross product (n*n ranges), which MySQL
	// abandons for a full scan beyond range_optimizer_max_mem_size.
	existingSQL: func(n int) string {
		return "SELECT msg_id, owner FROM inbox WHERE (msg_id, owner) IN (" + placeholders(n, 2) + ")"
	},
	// A loose index scan of the primary key: one dive per owner.
	lastSeqsSQL: func(n int) string {
		return "SELECT owner, MAX(seq) FROM inbox WHERE owner IN (" + marks(n) + ") GROUP BY owner"
	},
	lockMigrations: lockMySQLMigrations,
	isConflict: func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && (me.Number == 1062 || me.Number == 1213)
	},
}

// openMySQL connects to the database that dsn names.
func openMySQL(ctx context.Context, dsn string, maxConns int) (*backend, error) {
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
	// Below any server or proxy idle timeout, as the driver advises.
	db.SetConnMaxLifetime(3 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &backend{d: &mysqlDialect, w: db, r: db}, nil
}

// mysqlMigrationLock names a server-wide advisory lock for the current
// database (GET_LOCK names are server-wide and at most 64 characters long).
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

// marks returns n comma-separated "?".
func marks(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}
