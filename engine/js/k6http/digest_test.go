package k6http

import (
	"crypto/md5" //nolint:gosec // digest auth is MD5
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

func TestDigestAuthAnswersTheChallenge(t *testing.T) {
	u, _ := url.Parse("http://bob:secret@127.0.0.1/dir/index.html?x=1")
	got := digestAuth(`Digest realm="r@test", qop="auth,auth-int", nonce="abc123", opaque="op"`, u, "GET")
	params := map[string]string{}
	for _, p := range splitParams(strings.TrimPrefix(got, "Digest ")) {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = strings.Trim(v, `"`)
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) } //nolint:gosec // see import
	want := h(h("bob:r@test:secret") + ":abc123:" + params["nc"] + ":" + params["cnonce"] + ":auth:" + h("GET:/dir/index.html?x=1"))
	if params["response"] != want || params["username"] != "bob" || params["uri"] != "/dir/index.html?x=1" ||
		params["qop"] != "auth" || params["opaque"] != "op" {
		t.Fatalf("header %s: response %s, want %s", got, params["response"], want)
	}
	if digestAuth(`Basic realm="x"`, u, "GET") != "" || digestAuth(`Digest realm="x", nonce="n", algorithm=SHA-256`, u, "GET") != "" {
		t.Fatal("answered a challenge it can't")
	}
}
