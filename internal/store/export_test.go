package store

// MigrationVersions returns the versions of driver's embedded migrations,
// in order.
func MigrationVersions(driver string) ([]int, error) {
	ms, err := loadMigrations(driver)
	if err != nil {
		return nil, err
	}
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.version
	}
	return vs, nil
}
