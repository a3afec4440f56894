package lab

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Why a standalone lab returns its garbage to the OS itself.
//
// Every workspace is a tsnet node, and each node's wireguard-go device
// takes 512 packet buffers of 64 KiB at start (128, its batch size, for
// each of its three UDP/DERP receive loops and its TUN reader): 32 MiB per
// node that the Go heap counts as live although the kernel backs only the
// few pages packets touched. With 500 workspaces the "live" heap is 16 GiB,
// so the GC's next goal is 32 GiB and the scavenger, which keeps memory up
// to that goal, returns nothing: every byte of garbage the lab makes (start-
// up, then every echo frame) stays resident until the heap grows by 16 GiB.
// The lab's RSS then grows with its traffic, by megabytes per second.
//
// trimMemory fixes the accounting from outside: whenever the lab has
// allocated budget bytes since the last trim, it collects and returns the
// free pages to the OS (debug.FreeOSMemory), so the RSS follows what is
// really in use.

// trimBytesAllocated is the metric trimMemory reads: bytes allocated since
// the process started.
const trimBytesAllocated = "/gc/heap/allocs:bytes"

// trimMemory checks every interval and trims once budget bytes have been
// allocated since the last trim; it trims once at the start and returns
// when ctx ends.
func trimMemory(ctx context.Context, interval time.Duration, budget uint64) {
	sample := []metrics.Sample{{Name: trimBytesAllocated}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	debug.FreeOSMemory()
	last := read()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if now := read(); now-last >= budget {
			debug.FreeOSMemory()
			last = read()
		}
	}
}
