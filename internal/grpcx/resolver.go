package grpcx

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/resolver"
)

// StaticScheme is the resolver scheme of a fixed list of addresses:
// "static:///host1:port1,host2:port2". Dial understands it.
const StaticScheme = "static"

// staticBuilder resolves "static:///a:1,b:2" to the addresses a:1 and b:2,
// once. It is given to each connection with grpc.WithResolvers, so nothing
// is registered globally.
type staticBuilder struct{}

func (staticBuilder) Scheme() string { return StaticScheme }

func (staticBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	var state resolver.State
	for a := range strings.SplitSeq(t.Endpoint(), ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		addr := resolver.Address{Addr: a}
		state.Addresses = append(state.Addresses, addr)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{addr}})
	}
	if len(state.Addresses) == 0 {
		return nil, fmt.Errorf("grpcx: static target %q lists no address", t.String())
	}
	if err := cc.UpdateState(state); err != nil {
		return nil, fmt.Errorf("grpcx: static target %q: %w", t.String(), err)
	}
	return staticResolver{}, nil
}

// staticResolver has nothing to re-resolve.
type staticResolver struct{}

func (staticResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (staticResolver) Close()                                {}
