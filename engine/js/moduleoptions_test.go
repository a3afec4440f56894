package js

import (
	"encoding/json"
	"testing"
)

// TestMergeModuleOptionsKeepsScriptValuesOverNull checks that an option the
// consolidation lists as null (unset: exec.test.options' shape) does not
// hide the script's value of it, and that a set consolidated value wins.
func TestMergeModuleOptionsKeepsScriptValuesOverNull(t *testing.T) {
	got, err := mergeModuleOptions(
		json.RawMessage(`{"insecureSkipTLSVerify":true,"userAgent":"script","hosts":{"a":"127.0.0.1"}}`),
		json.RawMessage(`{"insecureSkipTLSVerify":null,"userAgent":"flag","hosts":null}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if m["insecureSkipTLSVerify"] != true || m["userAgent"] != "flag" || m["hosts"] == nil {
		t.Fatalf("merged options %s: want insecureSkipTLSVerify true, userAgent flag, the script's hosts", got)
	}
}
