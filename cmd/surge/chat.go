package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/surgechat/surge/client"
)

const chatHelp = `lines you type:
  @bob hello there      a direct message to bob
  #<group id> hi all    a message to a group
  /sub news             subscribe to topic news (/unsub news to stop)
  /online bob carol     which of these friends are online
what arrives is printed as it comes, one line each.
`

// chat is a small line-oriented WebSocket client, for trying Surge by hand
// and in scripts.
func chat(args []string) error {
	fs := flag.NewFlagSet("surge chat", flag.ExitOnError)
	url := fs.String("url", "ws://127.0.0.1:7000/ws", "the edge's WebSocket URL")
	token := fs.String("token", "", "access token: from POST /v1/auth/login, or surge token (required)")
	after := fs.Uint64("after", 0, "last inbox sequence already seen; everything after it is synced first")
	wait := fs.Duration("wait", 0, "after standard input ends, keep printing what arrives for this long")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: surge chat --token TOKEN [flags]\n\n%s\nflags:\n", chatHelp)
		fs.PrintDefaults()
	}
	_ = fs.Parse(args)
	if *token == "" {
		return errors.New("chat: --token is required")
	}
	out := func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	ctx := context.Background()
	c, err := client.Dial(ctx, *url, *token, client.Options{
		After: *after,
		OnMessage: func(m client.Msg) {
			out("[%d] %s in %s: %s", m.Seq, m.From, m.Conv, m.Body)
		},
		OnError: func(e *client.ServerError) {
			out("! %s %s: %s", e.ID, e.Code, e.Reason)
		},
		OnPresence: func(user string, online bool) {
			out("* %s is %s", user, map[bool]string{true: "online", false: "offline"}[online])
		},
		OnTopic: func(t client.TopicMsg) {
			out("[%s] %s: %s", t.Topic, t.From, t.Body)
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	out("connected as %s", c.User())

	n := 0
	id := func() string {
		n++
		return "chat-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(n)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := chatLine(rctx, c, line, id, out)
		cancel()
		if err != nil {
			out("! %v", err)
		}
	}
	select {
	case <-time.After(*wait):
	case <-c.Done():
		return c.Err()
	}
	return nil
}

func chatLine(ctx context.Context, c *client.Client, line string, id func() string, out func(string, ...any)) error {
	head, rest, _ := strings.Cut(line, " ")
	switch {
	case line == "":
		return nil
	case strings.HasPrefix(head, "@"):
		msgID, err := c.Send(ctx, head[1:], id(), rest)
		if err == nil {
			out("ok %s", msgID)
		}
		return err
	case strings.HasPrefix(head, "#"):
		msgID, err := c.SendGroup(ctx, head[1:], id(), rest)
		if err == nil {
			out("ok %s", msgID)
		}
		return err
	case head == "/sub":
		return c.Subscribe(ctx, rest)
	case head == "/unsub":
		return c.Unsubscribe(ctx, rest)
	case head == "/online":
		on, err := c.Online(ctx, strings.Fields(rest)...)
		if err == nil {
			out("online: %v", on)
		}
		return err
	}
	return fmt.Errorf("not understood: %q\n%s", line, chatHelp)
}
