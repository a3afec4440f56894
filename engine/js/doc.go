// Package js is cdeload's k6-compatible JavaScript runtime, built on
// github.com/grafana/sobek. It parses a k6-style ES-module script, and makes
// virtual users (VUs) that run its exported functions; it implements the
// lib.Runner contract the executors drive.
//
// # Two phases
//
// Parse runs "VU 0": it loads the entry module and every module it imports
// (local files relative to the importing module, remote https:// and
// http:// modules fetched once, and the built-in modules k6, k6/metrics,
// k6/execution, k6/timers, k6/http, k6/data, k6/encoding, k6/crypto,
// k6/html and the registered k6/x/* modules; a file without import or
// export is loaded as CommonJS, and require() works in init code), runs
// the init code (the top level of every module) once,
// collects the exports and the `options` object, and then locks the file
// cache: a later VU may only import modules and open() files that VU 0 saw.
// Source files are parsed and compiled once; every VU instantiates the
// shared compiled programs in its own sobek runtime.
//
// Every VU then runs the init code again in its own runtime. While it does,
// the VU is in the init context: modules.VU.InitEnv is non-nil and State is
// nil; open() and metric constructors work, check(), group(), metric.add()
// and k6/execution throw. Once init is done InitEnv becomes nil and State is
// set, and the VU runs setup(), the exec functions of its scenarios,
// teardown() or handleSummary(), in the VU context.
//
// # Event loop
//
// Each VU has an event loop that runs on the VU's goroutine. A call into JS
// (init, one iteration, setup…) is the loop's first task; the loop then runs
// queued tasks until the queue is empty and no callback registered through
// RegisterCallback is outstanding. RegisterCallback must be called on the VU
// goroutine and returns an enqueue function that must be called exactly once
// (a second call panics), from any goroutine, with the work to run on the VU
// goroutine; this is how promises are settled from Go. Timers hold such a
// registration until they fire or are cleared, so an iteration waits for its
// timers. A promise rejected without a handler at the end of a task fails
// the iteration, as does an exception thrown by a task.
//
// Every iteration has its own context, derived from the activation's
// RunContext and cancelled when the iteration ends. When RunContext ends
// mid-iteration the runtime is interrupted, the loop stops, pending timers
// are stopped and the loop waits for the outstanding registrations (modules
// see the cancelled context) before RunOnce returns lib.ErrInterrupted, so
// nothing outlives the iteration.
//
// An exception in an iteration is logged with its stack and the iteration
// still counts as complete (iterations and iteration_duration are emitted);
// exec.test.abort() makes RunOnce return *lib.AbortError.
package js
