package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, storetest.SQLite())
}

// TestSQLiteDeadlineWhileLocked: an Append waiting for another process's
// write lock gives up when its context does.
func TestSQLiteDeadlineWhileLocked(t *testing.T) {
	h := storetest.SQLite()
	dsns := h.NewDSNs(t, 1)
	s := h.Open(t, dsns...)

	other, err := sql.Open("sqlite", dsns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer other.Exec("ROLLBACK")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Append(ctx, 0, []store.Message{{Owner: "alice", ID: storetest.ID("1")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Append: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Append returned after %v", d)
	}
}
