package sqldb

import (
	"strings"

	sqlite3 "modernc.org/sqlite/lib"
)

// MySQL server error numbers that the classifiers below look for.
const (
	mysqlDupEntry = 1062 // ER_DUP_ENTRY
	mysqlDeadlock = 1213 // ER_LOCK_DEADLOCK
)

// IsDuplicate reports whether err (or an error it wraps) is a violation of
// a primary key or unique index: MySQL error 1062, or SQLite's
// SQLITE_CONSTRAINT_PRIMARYKEY or SQLITE_CONSTRAINT_UNIQUE. Other
// constraints (NOT NULL, CHECK, FOREIGN KEY) do not match.
func IsDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if n, ok := mysqlNumber(err); ok {
		return n == mysqlDupEntry
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || code == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// IsDeadlock reports whether err (or an error it wraps) is MySQL error 1213:
// InnoDB chose this transaction as a deadlock victim and rolled it back
// whole, so rerunning the transaction from its start is safe. SQLite
// writers are serialised by DB.W and never deadlock, so no SQLite error
// matches.
func IsDeadlock(err error) bool {
	if err == nil {
		return false
	}
	n, ok := mysqlNumber(err)
	return ok && n == mysqlDeadlock
}

// IsConflict reports whether err means that a concurrent writer took a key
// this one needed: IsDuplicate or IsDeadlock.
func IsConflict(err error) bool {
	return IsDuplicate(err) || IsDeadlock(err)
}

// Placeholders returns n groups of cols "?" marks each, "(?,?),(?,?)" for
// n=2, cols=2, as the VALUES of a multi-row INSERT or a row-constructor IN
// list. It returns "" if n or cols is not positive.
func Placeholders(n, cols int) string {
	if n <= 0 || cols <= 0 {
		return ""
	}
	group := "(" + Marks(cols) + ")"
	var sb strings.Builder
	sb.Grow(n * (len(group) + 1))
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(group)
	}
	return sb.String()
}

// Marks returns n comma-separated "?", "?,?,?" for n=3, as the list of an
// IN (...). It returns "" if n is not positive.
func Marks(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}
