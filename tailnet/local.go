package tailnet

import (
	"sync"

	"tailscale.com/envknob"
	"tailscale.com/logtail"
	"tailscale.com/net/netns"
)

// localKnobs are the tailscale environment knobs KeepLocal sets.
var localKnobs = [][2]string{
	{"TS_NO_LOGS_NO_SUPPORT", "true"},
	{"TS_DISABLE_PORTMAPPER", "1"},
	{"TS_DISABLE_UPNP", "1"},
	{"TS_DEBUG_OMIT_LOCAL_ADDRS", "1"},
	{"TS_ASSUME_NETWORK_UP_FOR_TEST", "1"},
	{"TS_PANIC_IF_HIT_MAIN_CONTROL", "1"},
}

var keepLocalOnce sync.Once

// KeepLocal sets the process-wide tailscale knobs that keep nodes from
// contacting anything but the configured control server and its DERP and
// STUN servers (see the package documentation). It is idempotent and is
// called by [New]; call it early (before any other tailscale code runs) if
// the process embeds other tailscale components.
func KeepLocal() {
	keepLocalOnce.Do(func() {
		for _, kv := range localKnobs {
			envknob.Setenv(kv[0], kv[1])
		}
		logtail.Disable()
		netns.SetEnabled(false)
	})
}

// ForceDERPOnly sets TS_DEBUG_NEVER_DIRECT_UDP=1 for the whole process, so
// every node started afterwards relays all traffic through DERP and never
// upgrades to a direct UDP path. It cannot be undone for nodes already
// started; use it in a process (or test package) of its own.
func ForceDERPOnly() {
	envknob.Setenv("TS_DEBUG_NEVER_DIRECT_UDP", "1")
}
