// Command tlsfront serves an http:// server (a coderpeer's coderd) through
// an https:// URL on loopback, as a load balancer fronts a production
// coderd, so benchmarks compare clients on the production path (TLS to
// coderd and its DERP relay). It writes the self-signed certificate to
// -cert (point SSL_CERT_FILE at it), prints the https URL on stdout and
// serves until SIGINT or SIGTERM.
//
//	tlsfront -target 127.0.0.1:3000 -cert /tmp/front.crt
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cdeload/cdeload/internal/tlsfront"
)

func main() {
	target := flag.String("target", "", "host:port of the plain-HTTP server (required)")
	certFile := flag.String("cert", "", "file to write the certificate to, for SSL_CERT_FILE (required)")
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	if err := run(*target, *certFile, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "tlsfront:", err)
		os.Exit(1)
	}
}

func run(target, certFile, listen string) error {
	if target == "" || certFile == "" {
		return fmt.Errorf("-target and -cert are required")
	}
	certPEM, keyPEM, err := tlsfront.NewCert("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write the certificate: %w", err)
	}
	f, err := tlsfront.Start(listen, target, cert)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Println(f.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
