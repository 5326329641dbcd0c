// Package ws is the edge's server-side WebSocket (RFC 6455) codec for an
// event loop: it parses the HTTP upgrade request and client frames out of
// byte buffers the loop hands it, and appends handshake responses and server
// frames to buffers the caller owns. Nothing here blocks or does I/O, and no
// function keeps buf after it returns, with one documented exception: a
// Message's Payload may alias the buf passed to Reader.Next (unmasked in
// place) until the caller discards those bytes. A Reader holds one
// connection's state and is not safe for concurrent use; everything else is.
// Extensions (permessage-deflate) are not supported.
package ws
