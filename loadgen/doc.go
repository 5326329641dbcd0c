// Package loadgen drives a running Surge over loopback and judges it: it
// opens connections and sends messages on an open-loop schedule, records
// latencies in HDR histograms measured from each operation's intended time
// (so a stalled generator shows up as latency instead of hiding it),
// verifies that every acked message arrives exactly once and in order, and
// checks the figures against SLOs.
//
// Run is the coordinator. With Config.Workers above one it re-executes the
// loadgen binary (Config.Exe) once per worker, because one process may hold
// no more sockets than its file limit; workers read their Config and
// commands as JSON lines on stdin and report progress and results as JSON
// lines on stdout (see worker.go). With one worker, the worker runs in the
// calling process.
//
// A scenario is a Scenario: it prepares its share of connections, runs,
// and reports counters, histograms and verification counts that the
// coordinator merges across workers. New scenarios register in
// scenarios.go.
//
// Run blocks until the run ends on its own (every run has a duration and
// a hard deadline) or ctx is cancelled. Nothing in the package is global:
// tests build their own Config.
package loadgen
