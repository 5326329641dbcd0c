package store

import (
	"embed"
	"io/fs"
)

// Schema migrations live in migrations/<driver>/NNNN_name.sql and are
// applied in version order at Open by sqldb.DB.Migrate, which records them
// in schema_migrations. See package sqldb for the file format and the
// rules: a released migration is never edited, and every statement should
// be safe to run twice.
//
//go:embed migrations
var migrationFiles embed.FS

// migrationTable records the store's applied migrations. Services that
// share a database with the store keep their own tables.
const migrationTable = "schema_migrations"

// migrationsFS returns the migrations laid out as sqldb expects them:
// <driver>/NNNN_name.sql at the root.
func migrationsFS() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // "migrations" is a valid path, so Sub cannot fail
	}
	return sub
}
