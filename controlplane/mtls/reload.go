package mtls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"
)

// ErrNoCA is wrapped when the client CA file holds no certificate.
var ErrNoCA = errors.New("no CA certificate in client CA file")

// Files are the PEM files a TLS server reads.
type Files struct {
	// Cert and Key are the server certificate (chain) and its private key.
	Cert, Key string
	// ClientCA is the bundle of CAs a client certificate must chain to.
	ClientCA string
}

// Reloader serves certificates from Files and reads them again when their
// bytes change, checked at every handshake (three small reads). A rotation
// that leaves the files unusable (a key that does not match, a half-written
// bundle) keeps the last good set and is logged; new connections use the new
// set as soon as it is whole, established ones keep theirs.
//
// Safe for concurrent use.
type Reloader struct {
	files Files
	log   *zap.Logger

	mu     sync.Mutex
	raw    [3][]byte // cert, key, CA as last read
	cert   *tls.Certificate
	pool   *x509.CertPool
	broken [3][]byte // the last unusable set, so it is logged once
}

// NewReloader reads the files once; an unusable set is an error.
func NewReloader(files Files, log *zap.Logger) (*Reloader, error) {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Reloader{files: files, log: log.Named("tls")}
	if _, _, err := r.current(); err != nil {
		return nil, err
	}
	return r, nil
}

// ServerConfig returns a TLS server config that requires a client
// certificate chained to the client CA and picks up rotated files at each
// handshake. nextProtos are the ALPN protocols ("h2" for gRPC).
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool, err := r.current()
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
			}, nil
		},
	}
}

// current returns the certificate and CA pool, re-parsed if a file changed.
func (r *Reloader) current() (*tls.Certificate, *x509.CertPool, error) {
	var raw [3][]byte
	for i, p := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		b, err := os.ReadFile(p)
		if err != nil {
			return r.keep(fmt.Errorf("tls: %w", err))
		}
		raw[i] = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && same(raw, r.raw) {
		return r.cert, r.pool, nil
	}
	if same(raw, r.broken) {
		return r.keepLocked(nil)
	}
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		r.broken = raw
		return r.keepLocked(fmt.Errorf("tls: %s, %s: %w", r.files.Cert, r.files.Key, err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw[2]) {
		r.broken = raw
		return r.keepLocked(fmt.Errorf("tls: %s: %w", r.files.ClientCA, ErrNoCA))
	}
	first := r.cert == nil
	r.raw, r.cert, r.pool = raw, &cert, pool
	if !first {
		r.log.Info("tls certificates reloaded", zap.String("cert", r.files.Cert), zap.String("client_ca", r.files.ClientCA))
	}
	return r.cert, r.pool, nil
}

func (r *Reloader) keep(err error) (*tls.Certificate, *x509.CertPool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keepLocked(err)
}

// keepLocked answers with the last good set, or err when there is none.
func (r *Reloader) keepLocked(err error) (*tls.Certificate, *x509.CertPool, error) {
	if r.cert == nil {
		if err == nil {
			err = errors.New("tls: no usable certificate")
		}
		return nil, nil, err
	}
	if err != nil {
		r.log.Error("tls files unusable; keeping the previous certificates", zap.Error(err))
	}
	return r.cert, r.pool, nil
}

func same(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}
