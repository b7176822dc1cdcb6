package kafkaconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// config is the client's tls.Config: TLS 1.2 or later, the CA file's roots
// or the system's, the client certificate (re-read when it changes) and the
// server name. franz-go clones it for each connection.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", flagCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s holds no PEM certificate", flagCAFile, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert := newWatched(func() (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			return &c, err
		}, t.CertFile, t.KeyFile)
		// Loaded now, so that a bad pair is an error at start; after
		// that, a bad rotation keeps the pair loaded before.
		if _, err := cert.get(); err != nil {
			return nil, fmt.Errorf("cannot load %s and %s: %w", flagCertFile, flagKeyFile, err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.get() }
	}
	return tc, nil
}
