package store

import "github.com/surgechat/surge/internal/sqldb"

// MigrationVersions returns the versions of driver's embedded migrations,
// in order.
func MigrationVersions(driver string) ([]int, error) {
	ms, err := sqldb.LoadMigrations(migrationsFS(), driver)
	if err != nil {
		return nil, err
	}
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return vs, nil
}
