package main

import (
	"context"
	"time"

	"github.com/cdeload/cdeload/engine/api"
	"github.com/cdeload/cdeload/engine/metricsengine"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/run"
)

// restAPI is the REST API of one `run`: its control and, with --address
// or K6_ADDRESS, its server.
type restAPI struct {
	control *api.Control
	server  *api.Server
}

// apiAddress is --address, or K6_ADDRESS when the flag is not given; ""
// means no REST API (k6 v2's default).
func apiAddress(rc *runContext) string {
	if rc.flags.fs.Changed("address") {
		return rc.flags.address
	}
	return rc.io.env["K6_ADDRESS"]
}

// startAPI makes the run's control and binds the REST API when an
// address is set. It is called after VU 0 and before VU init, like k6.
// A bind failure carries exit code 106.
func startAPI(rc *runContext) (*restAPI, error) {
	paused := options.IsSet(rc.opts.Paused)
	a := &restAPI{control: api.NewControl(paused)}
	addr := apiAddress(rc)
	if addr == "" {
		if paused {
			rc.log.Warn("--paused without --address: the REST API is off (k6 v2), so nothing can resume the test; " +
				"it waits until interrupted. Add --address HOST:PORT and resume it with PATCH /v1/status")
		}
		return a, nil
	}
	srv, err := api.Listen(addr, a.control, rc.log)
	if err != nil {
		return nil, err
	}
	a.server = srv
	rc.log.Debug("REST API listening", "address", srv.Addr().String())
	return a, nil
}

// install wires the control into the run: status, pause, stop, and the
// metrics engine's threshold state for "tainted".
func (a *restAPI) install(cfg *run.Config) {
	a.control.Install(&cfg.Hooks)
	for _, o := range cfg.Outputs {
		if eng, ok := o.(*metricsengine.Engine); ok {
			a.control.SetTainted(eng.Tainted)
		}
	}
}

// close stops the server, if any.
func (a *restAPI) close(rc *runContext) {
	if a == nil || a.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.server.Close(ctx); err != nil {
		rc.log.Warn(err.Error())
	}
}
