package social

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/wire"
)

// RoleOperator is the token role of Surge's operators: they may read any
// group and call the internal RPCs.
const RoleOperator = "operator"

var (
	errNoPrincipal = status.Error(codes.Unauthenticated, "authentication required")
	errNeedUser    = status.Error(codes.PermissionDenied, "a user token is required")
	errInternalRPC = status.Error(codes.PermissionDenied, "for Surge's services and operators only")
)

// principal is the caller of an RPC as the social service sees it.
type principal struct {
	user       string // empty for a service
	privileged bool   // a service, or a user with RoleOperator
}

// caller returns the RPC's authenticated caller (grpcx's auth interceptor
// put it in ctx).
func caller(ctx context.Context) (principal, error) {
	p, ok := grpcx.PrincipalFrom(ctx)
	if !ok {
		return principal{}, errNoPrincipal
	}
	return principal{user: p.User, privileged: p.Service || p.HasRole(RoleOperator)}, nil
}

// callerUser returns the user an RPC acts for: the token's user. A service
// principal has none.
func callerUser(ctx context.Context) (string, error) {
	p, err := caller(ctx)
	if err != nil {
		return "", err
	}
	if p.user == "" {
		return "", errNeedUser
	}
	return p.user, nil
}

// requirePrivileged fails unless the caller is a service or an operator.
func requirePrivileged(ctx context.Context) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	if !p.privileged {
		return errInternalRPC
	}
	return nil
}

// checkOther checks the user id an RPC names besides the caller's own:
// InvalidArgument "invalid user id", or InvalidArgument self if it is the
// caller.
func checkOther(me, other, self string) error {
	if !wire.ValidID(other) {
		return status.Error(codes.InvalidArgument, "invalid user id")
	}
	if other == me {
		return status.Error(codes.InvalidArgument, self)
	}
	return nil
}
