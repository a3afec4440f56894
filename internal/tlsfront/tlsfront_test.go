package tlsfront_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/cdeload/cdeload/internal/tlsfront"
)

func TestFrontForwardsHTTPS(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	defer backend.Close()
	certPEM, keyPEM, err := tlsfront.NewCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tlsfront.Start("127.0.0.1:0", backend.Listener.Addr().String(), cert)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer hc.CloseIdleConnections()
	res, err := hc.Get(f.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "hello /x" {
		t.Fatalf("body %q through the front, want %q", body, "hello /x")
	}
	if lines := f.RequestLines(); !slices.Equal(lines, []string{"GET /x HTTP/1.1"}) {
		t.Fatalf("request lines %q, want one GET /x", lines)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := tlsfront.Start("0.0.0.0:0", "127.0.0.1:1", tls.Certificate{}); err == nil {
		t.Fatal("Start on 0.0.0.0 succeeded, want an error: the front listens on loopback only")
	}
}
