package cdeload

import (
	_ "github.com/coder/websocket"
	_ "github.com/golang/snappy"
	_ "github.com/grafana/sobek"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/crypto/ssh/knownhosts"
	_ "google.golang.org/protobuf/encoding/protowire"
	_ "tailscale.com/derp/derpserver"
	_ "tailscale.com/ipn/store/mem"
	_ "tailscale.com/net/stun"
	_ "tailscale.com/tsnet"
	_ "tailscale.com/tstest/integration/testcontrol"
	_ "tailscale.com/types/logger"
	_ "tailscale.com/envknob"
	_ "tailscale.com/logtail"
	_ "golang.org/x/term"
)
