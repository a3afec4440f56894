// Package derponlytest holds tests that force every node in the process to
// relay through DERP (tailnet.ForceDERPOnly is process-wide, so these tests
// need a test binary of their own).
package derponlytest
