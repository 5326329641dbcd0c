package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// fdReserve is what a worker keeps free besides its connections: stdio,
// the keyring, the metrics scrape, the runtime's own descriptors.
const fdReserve = 64

// plan is what the preflight found and decided.
type plan struct {
	fileLimit      uint64
	portLo, portHi int
	target         string // host:port
	targetIP       net.IP
	path           string
	sources        []net.IP
	perWorker      int // connections of the busiest worker
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one and returns
// the result.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			rl = raised
		}
	}
	return rl.Cur, nil
}

func portRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0, 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	return lo, hi, nil
}

// resolveTarget returns the target's host:port, address and path.
func resolveTarget(target string) (string, net.IP, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, "", err
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return "", nil, "", fmt.Errorf("resolve %s: %v", host, err)
		}
		ip = ips[0]
		for _, a := range ips {
			if a.To4() != nil {
				ip = a
				break
			}
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	path := u.RequestURI()
	return net.JoinHostPort(ip.String(), port), ip, path, nil
}

// preflight checks that the machine can carry the plan and prints what it
// found. It refuses plans that need more descriptors per worker than the
// file limit, or more ports per source address than the ephemeral range.
func preflight(cfg *Config) (*plan, error) {
	p := &plan{}
	var err error
	if p.fileLimit, err = raiseFileLimit(); err != nil {
		return nil, err
	}
	if p.portLo, p.portHi, err = portRange(); err != nil {
		return nil, fmt.Errorf("read the ephemeral port range: %w", err)
	}
	if p.target, p.targetIP, p.path, err = resolveTarget(cfg.Target); err != nil {
		return nil, usageErr("target: %v", err)
	}
	n := cfg.totalConns()
	for i := 0; i < min(cfg.SrcAddrs, n); i++ {
		if ip := cfg.srcIP(i, p.targetIP); ip != nil {
			p.sources = append(p.sources, ip)
		}
	}
	p.perWorker = (n + cfg.Workers - 1) / cfg.Workers
	if cfg.Scenario == "direct" {
		p.perWorker = 2 * ((cfg.Direct.Pairs + cfg.Workers - 1) / cfg.Workers)
	}
	w := cfg.Stderr
	src := "any (IPv6 loopback)"
	if len(p.sources) > 0 {
		src = fmt.Sprintf("%s .. %s (%d)", p.sources[0], p.sources[len(p.sources)-1], len(p.sources))
	}
	fmt.Fprintf(w, "preflight: RLIMIT_NOFILE %d per process; ephemeral ports %d-%d (%d per source address)\n",
		p.fileLimit, p.portLo, p.portHi, p.portHi-p.portLo+1)
	fmt.Fprintf(w, "preflight: target %s (%s); sources %s\n", cfg.Target, p.target, src)
	fmt.Fprintf(w, "preflight: %d connections over %d worker(s): up to %d per worker + %d reserve = %d descriptors per worker\n",
		n, cfg.Workers, p.perWorker, fdReserve, p.perWorker+fdReserve)

	if need := uint64(p.perWorker + fdReserve); need > p.fileLimit {
		per := int(p.fileLimit) - fdReserve
		suggest := (n + per - 1) / max(per, 1)
		return nil, usageErr("the plan needs %d descriptors per worker but RLIMIT_NOFILE is %d: use --workers %d or more",
			need, p.fileLimit, suggest)
	}
	ports := p.portHi - p.portLo + 1
	if len(p.sources) > 0 {
		perSrc := (n + len(p.sources) - 1) / len(p.sources)
		if perSrc > ports*9/10 {
			return nil, usageErr("%d connections per source address exceed 90%% of the %d ephemeral ports: use --src-addrs %d",
				perSrc, ports, (n*10/9)/ports+1)
		}
	} else if n > ports*9/10 {
		return nil, usageErr("%d connections from ::1 exceed 90%% of the %d ephemeral ports: target 127.0.0.1 instead", n, ports)
	}
	senders := map[string]int{"direct": cfg.Direct.Pairs, "group": cfg.Group.Groups * cfg.Group.Size, "reconnect": cfg.Reconnect.Senders}
	if n, ok := senders[cfg.Scenario]; ok && !cfg.ClosedLoop {
		peak := cfg.Rate
		for _, p := range cfg.Ramp {
			peak = max(peak, p.Rate)
		}
		if per := peak / float64(n); per > 100 {
			fmt.Fprintf(w, "preflight: note: %.0f sends/s per sender connection; surge up allows 100/s unless started with --send-rate %.0f or more\n", per, per)
		}
	}
	if cfg.usesAPI() {
		fmt.Fprintf(w, "preflight: HTTP API %s; %d users to sign in (register if new, then log in)\n", cfg.API, cfg.users())
	}
	return p, nil
}
