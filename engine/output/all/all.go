// Package all registers every result output; the CLI imports it for its
// side effects so that -o json, csv, experimental-prometheus-rw and web-dashboard work.
package all

import (
	// Each output registers itself in its init.
	_ "github.com/cdeload/cdeload/engine/output/csv"
	_ "github.com/cdeload/cdeload/engine/output/json"
	_ "github.com/cdeload/cdeload/engine/output/prometheusrw"
	_ "github.com/cdeload/cdeload/engine/output/webdashboard"
)
