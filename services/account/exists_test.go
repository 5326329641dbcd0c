package account

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/services/account/accountpb"
)

func TestExists(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.register("alice")
		f := func(id string, want bool) {
			t.Helper()
			got, err := e.svc.Exists(ctxT(t), id)
			if err != nil || got != want {
				t.Fatalf("Exists(%q) = %v, %v; want %v", id, got, err, want)
			}
		}
		f("alice", true)
		f("ALICE", true) // ids are lower-case
		f("bob", false)
		f("not/valid", false)
	})
}

func TestReservedUsernames(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		for _, name := range []string{"system", "System", "admin"} {
			_, err := e.svc.Register(ctxT(t), &accountpb.RegisterRequest{Username: name, Password: "long enough password"})
			wantCode(t, err, codes.InvalidArgument, "reserved")
		}
	})
}
