package conformance

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const httpFlagsScript = `import http from "k6/http";
export const options = { userAgent: "from-script", maxRedirects: 5, discardResponseBodies: false };
export default function () {
  console.log("UA " + http.get(__ENV.PLAIN + "/ua").body);
  const tls = http.get(__ENV.TLS + "/ua");
  console.log("TLS " + tls.status + " " + (tls.error !== "" ? "error" : tls.body));
  const redir = http.get(__ENV.PLAIN + "/redirect");
  console.log("REDIRECT " + redir.status);
}
`

// k6/http's options come from flags and K6_* variables over the script's
// options, as in k6 (script < env < flags).
func TestHTTPOptionsFromFlagsAndEnv(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ua", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.UserAgent()) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/final", http.StatusFound) })
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "final") })
	plain := httptest.NewServer(mux)
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewUnstartedServer(mux) // self-signed: verification fails
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "http_flags.js"), []byte(httpFlagsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"PLAIN=" + plain.URL, "TLS=" + tlsSrv.URL}
	cases := []struct {
		name  string
		env   []string
		flags []string
		want  []string
	}{
		{"script options", nil, nil,
			[]string{"UA from-script", "TLS 0 error", "REDIRECT 200"}},
		{"flags over the script", nil,
			[]string{"--user-agent", "from-flag", "--insecure-skip-tls-verify", "--max-redirects", "0", "--discard-response-bodies"},
			[]string{"UA null", "TLS 200 null", "REDIRECT 302"}},
		{"env over the script", []string{"K6_USER_AGENT=from-env", "K6_INSECURE_SKIP_TLS_VERIFY=true", "K6_MAX_REDIRECTS=0"}, nil,
			[]string{"UA from-env", "TLS 200 from-env", "REDIRECT 302"}},
		{"flags over env", []string{"K6_USER_AGENT=from-env", "K6_INSECURE_SKIP_TLS_VERIFY=true"},
			[]string{"--user-agent", "from-flag", "--insecure-skip-tls-verify=false"},
			[]string{"UA from-flag", "TLS 0 error", "REDIRECT 200"}},
	}
	for _, c := range cases {
		args := append([]string{"run", "-q", "--iterations", "1"}, c.flags...)
		args = append(args, "http_flags.js")
		r := runIn(t, dir, append(slices.Clone(base), c.env...), "", args...)
		var got []string
		for _, p := range []string{"UA ", "TLS ", "REDIRECT "} {
			got = append(got, r.msgs(p)...)
		}
		if r.code != 0 || !slices.Equal(got, c.want) {
			t.Errorf("%s: want %q, got %q\n%s", c.name, c.want, got, r)
		}
	}
}
