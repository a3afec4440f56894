package executor

import "sync/atomic"

// Stats are the run-wide counters the executors update.
type Stats struct {
	// Complete and Interrupted count iterations by how they ended.
	Complete    atomic.Uint64
	Interrupted atomic.Uint64
	// Dropped counts iterations that were never started.
	Dropped atomic.Uint64
	// ActiveVUs is the number of VUs active in a scenario right now.
	ActiveVUs atomic.Int64
}
