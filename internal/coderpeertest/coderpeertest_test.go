package coderpeertest

import (
	"net/http"
	"testing"
)

func TestParseExports(t *testing.T) {
	got := ParseExports("export CODER_URL=http://127.0.0.1:1\nexport CODERPEER_DIR=\"/tmp/a b\"\nnoise\nexport X='y'\n")
	want := map[string]string{"CODER_URL": "http://127.0.0.1:1", "CODERPEER_DIR": "/tmp/a b", "X": "y"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestStartServesTheAPI starts a real coderd and checks that its API answers
// the owner's token: the canary for every interop test.
func TestStartServesTheAPI(t *testing.T) {
	p := Start(t, Options{})
	req, err := http.NewRequest(http.MethodGet, p.URL+"/api/v2/users/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Coder-Session-Token", p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/users/me as the owner: %s", resp.Status)
	}
	if p.Template == "" || p.Coder == "" {
		t.Errorf("template %q, coder binary %q: want both set", p.Template, p.Coder)
	}
}
