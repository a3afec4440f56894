package k6http

import (
	"crypto/md5" //nolint:gosec // HTTP digest authentication is defined with MD5
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// digestAuth answers a Digest challenge (RFC 7616, MD5, qop=auth) with the
// credentials of u; it returns "" for a challenge it can't answer.
func digestAuth(challenge string, u *url.URL, method string) string {
	if !strings.HasPrefix(strings.ToLower(challenge), "digest ") {
		return ""
	}
	params := map[string]string{}
	for _, part := range splitParams(challenge[len("digest "):]) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	if alg := params["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return ""
	}
	user := u.User.Username()
	pw, _ := u.User.Password()
	uri := u.RequestURI()
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) } //nolint:gosec // see import
	ha1 := h(user + ":" + params["realm"] + ":" + pw)
	ha2 := h(method + ":" + uri)
	var cb [8]byte
	_, _ = rand.Read(cb[:])
	cnonce := hex.EncodeToString(cb[:])
	qop := ""
	for _, q := range strings.Split(params["qop"], ",") {
		if strings.TrimSpace(q) == "auth" {
			qop = "auth"
		}
	}
	var resp string
	if qop == "auth" {
		resp = h(ha1 + ":" + params["nonce"] + ":00000001:" + cnonce + ":auth:" + ha2)
	} else {
		resp = h(ha1 + ":" + params["nonce"] + ":" + ha2)
	}
	out := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`, user, params["realm"], params["nonce"], uri, resp)
	if qop != "" {
		out += fmt.Sprintf(`, qop=auth, nc=00000001, cnonce="%s"`, cnonce)
	}
	if o := params["opaque"]; o != "" {
		out += fmt.Sprintf(`, opaque="%s"`, o)
	}
	return out
}

// splitParams splits a challenge's parameters on commas outside quotes.
func splitParams(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, cur.String())
}
