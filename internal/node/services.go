package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
	"github.com/surgechat/surge/services/account"
	"github.com/surgechat/surge/services/account/accountpb"
	"github.com/surgechat/surge/services/gateway"
	"github.com/surgechat/surge/services/message"
	"github.com/surgechat/surge/services/message/messagepb"
	"github.com/surgechat/surge/services/social"
	"github.com/surgechat/surge/services/social/socialpb"
)

// grpcService is one gRPC service the node serves on its own port.
type grpcService struct {
	name string
	ln   net.Listener
	srv  *grpcx.Server
}

// services holds the account, social and message services and the HTTP
// gateway of a node that runs the services role.
type services struct {
	grpc      []grpcService
	account   *account.Service
	social    *social.Service
	gateway   *gateway.Gateway
	gatewayLn net.Listener
	conns     []*grpc.ClientConn
}

// serviceToken reads the token that Surge's own roles present to the
// services, creating it on first start.
func serviceToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < grpcx.MinServiceTokenLen {
			return "", fmt.Errorf("service token %s: shorter than %d bytes", path, grpcx.MinServiceTokenLen)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// serviceDB names the database of a service: a SQLite file in the data
// dir, or the first store DSN on MySQL, where each service keeps its own
// tables and migration history.
func (n *Node) serviceDB(name string) sqldb.Config {
	if n.cfg.StoreDriver == store.DriverMySQL {
		return sqldb.Config{Driver: sqldb.DriverMySQL, DSN: n.cfg.StoreDSNs[0]}
	}
	return sqldb.Config{Driver: sqldb.DriverSQLite, DSN: filepath.Join(n.cfg.DataDir, name+".db")}
}

// startServices opens the services and their listeners.
func (n *Node) startServices(ctx context.Context, keys *auth.Keyring, ring *router.Ring, token string) error {
	cfg := &n.cfg
	sv := &services{}
	n.services = sv
	set := vm.NewSet()
	n.sets = append(n.sets, set)
	authn, err := grpcx.ServiceTokenAuth(token)
	if err != nil {
		return err
	}
	authn = grpcx.AnyAuth(authn, grpcx.JWTAuth(keys))

	var err2 error
	sv.account, err2 = account.New(ctx, account.Config{
		DB: n.serviceDB("account"), Keys: keys, Operators: cfg.Operators,
		Logger: n.log, Metrics: set, TrustForwardedFor: true,
	})
	if err2 != nil {
		return fmt.Errorf("account service: %w", err2)
	}
	sv.social, err = social.New(ctx, social.Config{
		DB: n.serviceDB("social"), MaxGroupSize: cfg.MaxGroupSize, DirectPolicy: cfg.DirectPolicy,
		UserExists: sv.account.Exists,
		OnGroupChange: func(ctx context.Context, group string, version int64) error {
			return n.groupChanged(ctx, ring, group, version)
		},
		Logger: n.log, Metrics: set,
	})
	if err != nil {
		return fmt.Errorf("social service: %w", err)
	}
	addrs := []string{cfg.AccountAddr, cfg.SocialAddr, cfg.MessageAddr}
	names := []string{account.ServiceName, "surge.social.v1.Social", "surge.message.v1.Message"}
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listen: %w", names[i], err)
		}
		srv, err := grpcx.NewServer(grpcx.ServerConfig{Logger: n.log, Metrics: set, Auth: authn,
			Public: map[bool][]string{true: account.PublicMethods}[i == 0]})
		if err != nil {
			ln.Close()
			return err
		}
		sv.grpc = append(sv.grpc, grpcService{name: names[i], ln: ln, srv: srv})
	}
	// The message path reaches the social service through its port, as it
	// would in another process: breaker, deadlines and the service token.
	if err := n.dialSocial(ctx, sv.grpc[1].ln.Addr().String(), token); err != nil {
		return err
	}
	msg, err := message.New(message.Config{
		Store: n.store, Ring: ring, Producer: n.producer, Topic: cfg.Topic, Social: n.social, Logger: n.log,
	})
	if err != nil {
		return err
	}
	account.Register(sv.grpc[0].srv, sv.account)
	sv.social.Register(sv.grpc[1].srv)
	msg.Register(sv.grpc[2].srv)
	for _, s := range sv.grpc {
		s.srv.SetServing(s.name, true)
	}

	if cfg.GatewayAddr != "off" {
		// The gateway forwards each caller's own token; it has none of its own.
		dial := func(ln net.Listener) (*grpc.ClientConn, error) {
			c, err := grpcx.Dial(ctx, ln.Addr().String(), grpcx.ClientConfig{Logger: n.log})
			if err == nil {
				sv.conns = append(sv.conns, c)
			}
			return c, err
		}
		ac, err := dial(sv.grpc[0].ln)
		if err != nil {
			return err
		}
		sc, err := dial(sv.grpc[1].ln)
		if err != nil {
			return err
		}
		mc, err := dial(sv.grpc[2].ln)
		if err != nil {
			return err
		}
		sv.gateway, err = gateway.New(gateway.Config{
			Addr:    cfg.GatewayAddr,
			Account: accountpb.NewAccountClient(ac), Social: socialpb.NewSocialClient(sc), Message: messagepb.NewMessageClient(mc),
			AllowedOrigins: cfg.CORSOrigins, TrustForwardedFor: cfg.TrustForwardedFor, Logger: n.log, Metrics: set,
		})
		if err != nil {
			return err
		}
		if sv.gatewayLn, err = net.Listen("tcp", cfg.GatewayAddr); err != nil {
			return fmt.Errorf("gateway listen: %w", err)
		}
	}
	return nil
}

// dialSocial connects the message path to the social service.
func (n *Node) dialSocial(ctx context.Context, target, token string) error {
	set := vm.NewSet()
	n.sets = append(n.sets, set)
	conn, err := grpcx.Dial(ctx, target, grpcx.ClientConfig{
		Logger: n.log, Metrics: set, Token: func() string { return token },
		Timeout:    2 * time.Second,
		Idempotent: func(string) bool { return true }, // the message path only reads
	})
	if err != nil {
		return fmt.Errorf("social client: %w", err)
	}
	n.socialConn = conn
	n.social = socialcache.New(socialcache.GRPC(socialpb.NewSocialClient(conn)), socialcache.Config{Metrics: set, Role: "node"})
	return nil
}

// groupChanged tells the group's shard that its membership changed. The
// cache that this process's edge and shard share is dropped at once, so a
// member just added can post at once; other processes learn it from the
// record, or when their entry expires.
func (n *Node) groupChanged(ctx context.Context, ring *router.Ring, group string, version int64) error {
	if n.social != nil {
		n.social.Invalidate(group, version)
	}
	owner := "g/" + group
	r := wire.Record{Kind: wire.KindGroupChange, Group: group, Version: version}
	kr := &kgo.Record{Topic: n.cfg.Topic, Partition: ring.Partition(owner), Key: []byte(owner), Value: wire.AppendRecord(nil, &r)}
	return n.producer.ProduceSync(ctx, kr).FirstErr()
}

func (sv *services) serve(ctx context.Context, g interface{ Go(func() error) }) {
	for _, s := range sv.grpc {
		g.Go(func() error {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.srv.Shutdown(sctx)
			return nil
		})
	}
	if sv.gateway != nil {
		g.Go(func() error {
			if err := sv.gateway.Serve(ctx, sv.gatewayLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("gateway: %w", err)
			}
			return nil
		})
	}
}

func (sv *services) close() {
	for _, c := range sv.conns {
		c.Close()
	}
	for _, s := range sv.grpc {
		s.ln.Close()
	}
	if sv.gatewayLn != nil {
		sv.gatewayLn.Close()
	}
	if sv.account != nil {
		sv.account.Close()
	}
	if sv.social != nil {
		sv.social.Close()
	}
}

// ping checks the services' databases.
func (sv *services) ping(ctx context.Context) error {
	if err := sv.account.Ping(ctx); err != nil {
		return fmt.Errorf("account db: %w", err)
	}
	if err := sv.social.Ping(ctx); err != nil {
		return fmt.Errorf("social db: %w", err)
	}
	return nil
}
