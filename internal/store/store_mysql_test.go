package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/store/storetest"
)

// TestMySQL runs the suite against the server that SURGE_TEST_MYSQL_DSN
// names, each subtest on fresh databases.
func TestMySQL(t *testing.T) {
	storetest.Run(t, storetest.MySQL(t))
}

// TestMySQLDeadlineWhileLocked: an Append waiting for a row lock that
// another writer holds gives up when its context does, and the other
// writer's commit then stands.
func TestMySQLDeadlineWhileLocked(t *testing.T) {
	h := storetest.MySQL(t)
	dsns := h.NewDSNs(t, 1)
	s := h.Open(t, dsns...)

	other, err := sql.Open("mysql", dsns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO inbox (owner, seq, msg_id, sender, client_msg_id, conv, body, sent_at, stored_at)
		VALUES ('alice', 1, ?, '', '', '', '', 0, 0)`, make([]byte, store.MsgIDLen)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Append(ctx, 0, []store.Message{{Owner: "alice", ID: storetest.ID("1")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Append: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Append returned after %v", d)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Append(context.Background(), 0, []store.Message{{Owner: "alice", ID: storetest.ID("1")}})
	if err != nil || len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("Append after the other commit: %v, %v; want seq 2", got, err)
	}
}
