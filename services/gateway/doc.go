// Package gateway is Surge's public HTTP JSON API, mapped onto the gRPC
// services account, social and message. docs/HTTP_API.md documents every
// endpoint; routes.go is the one table of them.
//
// It owns no state: each request becomes one unary call to one service,
// with the request's Authorization header forwarded as the "authorization"
// metadata and the client's address as "x-forwarded-for", under a
// deadline of Config.Timeout. The services check tokens and permissions;
// the gateway only translates.
//
// Translation. The routes are written by hand on net/http's ServeMux with
// method and path patterns. grpc-gateway would derive them from
// google.api.http annotations, but those need the googleapis protos
// (google/api/annotations.proto, http.proto), which Surge does not vendor,
// and the generated reverse proxy is more code than the thirty-odd routes
// it would replace. Bodies map to and from the generated messages with
// protojson, so the JSON field names are the proto field names: requests
// reject unknown fields (a typo fails with 400 instead of being ignored),
// responses carry every field, and 64-bit integers are JSON strings, as
// the proto3 JSON mapping says. Path wildcards and the query parameters a
// route declares fill request fields; any other query parameter is a 400.
//
// Errors. A gRPC status becomes an HTTP status by the table in errors.go
// (google.rpc.Code's own mapping) and the body
// {"error":{"code":"NOT_FOUND","message":"..."}}; the message is the
// service's, unchanged.
//
// A Gateway is safe for concurrent use. Nothing in it blocks beyond the
// downstream call, which the request's context and Config.Timeout bound.
package gateway
