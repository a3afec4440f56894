// Package conformance holds the end-to-end suite that runs k6-style
// scripts through the cdeload binary; it has no non-test code.
package conformance
