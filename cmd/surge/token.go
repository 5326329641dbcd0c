package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/wire"
)

func token(args []string) error {
	fs := flag.NewFlagSet("surge token", flag.ExitOnError)
	dataDir := fs.String("data-dir", "surge-data", "data directory of the surge up that must accept the token")
	keys := fs.String("keys", "", "JWT keyring file (default <data-dir>/keys.json, created if missing)")
	user := fs.String("user", "", "user id the token is for (required)")
	roles := fs.String("roles", "user", "comma-separated roles")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	_ = fs.Parse(args)
	if !wire.ValidID(*user) {
		return errors.New("token: --user must be 1-64 characters of A-Z a-z 0-9 _ . - @")
	}
	path := *keys
	if path == "" {
		path = filepath.Join(*dataDir, "keys.json")
	}
	ring, err := auth.LoadOrCreateKeyring(path)
	if err != nil {
		return err
	}
	tok, err := ring.Issue(*user, strings.Split(*roles, ","), *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
