package e2e

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// mysqlDatabases creates n fresh databases on the server named by
// SURGE_TEST_MYSQL_DSN (such as "root@tcp(127.0.0.1:3306)/"), drops them
// in Cleanup, and returns their DSNs.
func mysqlDatabases(t *testing.T, n int) []string {
	t.Helper()
	base := os.Getenv("SURGE_TEST_MYSQL_DSN")
	if base == "" {
		t.Skip("SURGE_TEST_MYSQL_DSN not set (make test-integration sets it)")
	}
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var dsns []string
	for i := 0; i < n; i++ {
		var b [6]byte
		_, _ = rand.Read(b[:])
		name := "surge_e2e_" + hex.EncodeToString(b[:])
		if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + name) })
		dsns = append(dsns, base+name)
	}
	return dsns
}

// TestMySQLStoreEndToEnd runs the message path on MariaDB with the inbox
// tables sharded across two databases, through a kill -9 and restart.
func TestMySQLStoreEndToEnd(t *testing.T) {
	dsns := mysqlDatabases(t, 2)
	s := startServer(t, "--store", "mysql", "--store-dsn", dsns[0]+","+dsns[1])
	a, _ := s.dial("alice", 0)
	users := []string{"bob", "carol", "dave", "erin"}
	const per = 30
	for i := 1; i <= per; i++ {
		for _, u := range users {
			if _, err := a.Send(ctxT(t), u, fmt.Sprintf("%s-%d", u, i), fmt.Sprintf("to %s #%d", u, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.kill()
	s.start()
	for _, u := range users {
		_, in := s.dial(u, 0)
		waitFor(t, 15*time.Second, u+"'s inbox", func() bool { return in.len() >= per })
		for i, m := range in.list() {
			if m.Seq != uint64(i+1) || m.Body != fmt.Sprintf("to %s #%d", u, i+1) {
				t.Fatalf("%s[%d] = seq %d body %q", u, i, m.Seq, m.Body)
			}
		}
	}
	_, aIn := s.dial("alice", 0)
	waitFor(t, 15*time.Second, "alice's own copies", func() bool { return aIn.len() >= per*len(users) })
	if n := aIn.len(); n != per*len(users) {
		t.Fatalf("alice has %d copies, want %d", n, per*len(users))
	}
	// Both databases hold inbox rows: the partitions are spread over them.
	for _, dsn := range dsns {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := db.QueryRow("SELECT COUNT(*) FROM inbox").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if rows == 0 {
			t.Fatalf("database %s holds no inbox rows", dsn)
		}
	}
}
