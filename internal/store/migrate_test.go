package store_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"

	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/store/storetest"
)

func TestMigrations(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMigrations(t, storetest.SQLite()) })
	t.Run("mysql", func(t *testing.T) { testMigrations(t, storetest.MySQL(t)) })
}

// testMigrations opens one database several times, twice at once, and
// checks that every migration is recorded once and data survives.
func testMigrations(t *testing.T, h storetest.Harness) {
	ctx := context.Background()
	dsn := h.NewDSNs(t, 1)[0]

	var wg sync.WaitGroup
	stores := make([]store.Store, 2)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = store.Open(ctx, store.Config{Driver: h.Driver, DSNs: []string{dsn}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	m := store.Message{Owner: "alice", ID: storetest.ID("1"), Body: []byte("kept")}
	if _, err := stores[0].Append(ctx, 0, []store.Message{m}); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		s.Close()
	}

	s := h.Open(t, dsn)
	if got, err := s.Inbox(ctx, 0, "alice", 0, 10); err != nil || len(got) != 1 || string(got[0].Body) != "kept" {
		t.Errorf("after reopening: Inbox = %v, %v", got, err)
	}

	db, err := sql.Open(h.Driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want, err := store.MigrationVersions(h.Driver)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("schema_migrations holds %v, want %v", got, want)
	}
}
