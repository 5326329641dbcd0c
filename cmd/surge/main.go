// Command surge runs Surge's roles. `surge up` runs all of them in one
// process on embedded defaults; `surge token` prints a development JWT.
package main

import (
	"fmt"
	"os"

	"github.com/surgechat/surge/internal/node"
)

const usage = `usage: surge <command> [flags]

commands:
  up      run every role in one process (embedded Kafka and store unless told otherwise)
  edge    run only an edge, attached to the shards of a running surge up (--kafka, --shards)
  shard   run only a shard (--kafka)
  token   print a JWT that surge up accepts, for development and scripts
  chat    a line-oriented WebSocket client: send, receive, subscribe

Run "surge <command> -h" for the command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = serve("up", nil, os.Args[2:])
	case "edge":
		err = serve("edge", []string{node.RoleEdge}, os.Args[2:])
	case "shard":
		err = serve("shard", []string{node.RoleShard}, os.Args[2:])
	case "token":
		err = token(os.Args[2:])
	case "chat":
		err = chat(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "surge: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "surge:", err)
		os.Exit(1)
	}
}
