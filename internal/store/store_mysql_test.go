package store_test

import (
	"testing"

	"github.com/surgechat/surge/internal/store/storetest"
)

// TestMySQL runs the suite against the server that SURGE_TEST_MYSQL_DSN
// names, each subtest on fresh databases.
func TestMySQL(t *testing.T) {
	storetest.Run(t, storetest.MySQL(t))
}
