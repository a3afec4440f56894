// Package cdeload is the JavaScript module k6/x/cdeload: it turns the plain
// Go libraries of this repository (tailnet, sshtraffic, lab, workspace) into
// a k6-style API for load scripts. It is the only package that knows about
// JavaScript; the libraries know nothing of it.
//
// # Shape
//
// One root module is registered per process (see [New]); the engine asks it
// for one instance per VU runtime ([RootModule.NewModuleInstance]). Every VU
// has its own instance and its own JS objects; the only state shared between
// VUs lives on the root module: the embedded lab (started lazily on the first
// network call that needs it, never at import time nor in the init context)
// and the pool of shared tailnet nodes. The host releases them by calling
// [RootModule.Close] after the run.
//
// # Async model
//
// Every method that touches the network returns a Promise. The work runs on
// its own goroutine with the VU context read at the time of the call (it is
// replaced every iteration), and the promise is settled through
// RegisterCallback on the VU's event loop, where the only JS values are
// created. Network methods throw when called in the init context;
// constructors do not touch the network and may be called there.
//
// # Metrics
//
// The metrics of DESIGN.md are registered when a VU instantiates the module
// and emitted with the VU's tags as they were when the JS method was called,
// plus metric-specific tags (path, transport). High-cardinality identifiers
// (workspace name, host, agent ID) go in sample metadata, never in tags. Echo
// RTT samples are batched (one channel send per ~100 ms per stream) and
// flushed completely before the echo promise settles.
//
// # Targets
//
// Without configuration everything targets the embedded lab. TS_CONTROL_URL
// and TS_AUTHKEY point tailnets at a real control server, CDELOAD_LAB_URL at a
// standalone `cdeload lab`, CODER_URL and CODER_SESSION_TOKEN at a Coder
// deployment. Options given in the script win over the environment (__ENV,
// which includes the system environment).
package cdeload

import (
	"github.com/cdeload/cdeload/engine/modules"
)

// ImportPath is the module's import path in scripts.
const ImportPath = "k6/x/cdeload"

func init() { modules.Register(ImportPath, New()) }

var (
	_ modules.Module   = (*RootModule)(nil)
	_ modules.Instance = (*instance)(nil)
)
