package account

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
)

// errNeedUser: a service (the service token) called a method that acts
// on the caller's own account.
var errNeedUser = status.Error(codes.PermissionDenied, "this call acts on the caller's own account and needs a user's access token")

// callerID returns the id of the user making the call, as the grpcx auth
// interceptor authenticated it.
func callerID(ctx context.Context) (string, error) {
	p, ok := grpcx.PrincipalFrom(ctx)
	switch {
	case !ok:
		return "", errNotAuthenticated
	case p.User == "":
		return "", errNeedUser
	}
	return p.User, nil
}

// requireOperator returns the caller's id if the caller is a user with the
// operator role (as of their access token).
func requireOperator(ctx context.Context) (string, error) {
	if err := grpcx.RequireRole(ctx, RoleOperator); err != nil {
		return "", err
	}
	return callerID(ctx)
}
