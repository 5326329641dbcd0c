package edge

import (
	"fmt"
	"syscall"
)

// fileReserve is how many descriptors the edge keeps free for everything
// that is not a client connection: listeners, Kafka and store connections,
// the data dir's files, and connections accepted only to be refused.
func fileReserve(limit uint64) uint64 {
	return min(512, limit/4)
}

// DefaultMaxConns derives the connection cap from the process's file limit,
// raising the soft limit to the hard one first.
func DefaultMaxConns() (int, error) {
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
	return int(rl.Cur - fileReserve(rl.Cur)), nil
}
