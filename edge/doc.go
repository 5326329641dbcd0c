// Package edge holds clients' WebSockets on gnet event loops.
//
// An edge upgrades connections (checking the JWT), speaks the client
// protocol of docs/PROTOCOL.md, produces accepted sends and presence records
// to Kafka, and writes the deliveries that shards push to it through the
// router's delivery plane.
//
// What must never block: the event-loop callbacks (OnOpen, OnTraffic,
// OnClose) and the router.Sink methods (Deliver, Ready, Announce). Work that
// waits (store queries for sync) runs on its own goroutines; Kafka produces
// are asynchronous and fail fast when the producer's buffer is full.
//
// Each connection's outbound frames go through one bounded queue guarded by
// a mutex: any goroutine may append a frame and wake the connection's loop,
// which writes everything queued in one write (write coalescing). A client
// that lets more than Config.WriteQueue bytes pile up is a slow consumer and
// is closed with code 1008; it loses nothing, since it syncs on reconnect.
//
// Admission control keeps the process below its file limit: gnet stops its
// whole engine when accept fails with EMFILE, so the edge refuses (HTTP 503)
// connections beyond Config.MaxConns, which defaults to the RLIMIT_NOFILE
// minus a reserve for the process's other files.
package edge
