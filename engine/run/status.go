package run

// Status is the stage a run is in, in k6's order (the REST API reports it
// as an integer).
type Status int

// The run statuses, in k6's order.
const (
	StatusCreated Status = iota
	StatusInitVUs
	StatusInitExecutors
	StatusInitDone
	StatusPausedBeforeRun
	StatusStarted
	StatusSetup
	StatusRunning
	StatusTeardown
	StatusEnded
	StatusInterrupted
	StatusMarkedAsFailed
)

var statusNames = [...]string{"created", "init-vus", "init-executors", "init-done", "paused-before-run",
	"started", "setup", "running", "teardown", "ended", "interrupted", "marked-as-failed"}

// String returns the status in lower-case words.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}
