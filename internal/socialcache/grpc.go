package socialcache

import (
	"context"

	"github.com/surgechat/surge/services/social/socialpb"
)

// GRPC is a Source that asks the social service over gRPC. The connection
// behind client carries the deadlines, breaker and service token.
func GRPC(client socialpb.SocialClient) Source { return grpcSource{client} }

type grpcSource struct{ c socialpb.SocialClient }

func (g grpcSource) Membership(ctx context.Context, group string) (Membership, error) {
	m, err := g.c.GetMembership(ctx, &socialpb.GroupRef{GroupId: group})
	if err != nil {
		return Membership{}, err
	}
	return Membership{Version: m.GetVersion(), Members: m.GetMembers(), Exists: m.GetExists()}, nil
}

func (g grpcSource) CheckDirect(ctx context.Context, from, to string) (Direct, error) {
	r, err := g.c.CheckDirect(ctx, &socialpb.CheckDirectRequest{From: from, To: to})
	if err != nil {
		return Direct{}, err
	}
	return Direct{Allowed: r.GetAllowed(), Reason: r.GetReason()}, nil
}

func (g grpcSource) FriendIDs(ctx context.Context, user string) ([]string, error) {
	r, err := g.c.ListFriendIDs(ctx, &socialpb.UserRef{User: user})
	if err != nil {
		return nil, err
	}
	return r.GetUsers(), nil
}
