package chconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	chsink "purchasesync/sinks/clickhouse"
)

// CheckTimeout bounds Check unless its context ends sooner.
const CheckTimeout = 10 * time.Second

// ErrUnreachable is what Check returns, wrapped with each address's error,
// when no server answered: connection refused, timeouts, unknown hosts. It
// is a server that is down or not up yet; a long-running process goes on,
// and its stages retry.
var ErrUnreachable = errors.New("cannot reach any ClickHouse server")

// ConfigError is a connection that failed in a way retrying cannot mend: a
// wrong password, an unknown CA, plaintext against the secure port, ...
// Its message is one line naming the flag that fixes it; it never contains
// a secret.
type ConfigError struct {
	Addr string // the address, host:port
	Flag string // the flag that fixes it, such as "-clickhouse.password"
	Msg  string // the whole message
	Err  error  // what clickhouse-go or crypto/tls reported
}

func (e *ConfigError) Error() string { return e.Msg }
func (e *ConfigError) Unwrap() error { return e.Err }

// ClickHouse's exception codes for refused credentials: UNKNOWN_USER,
// WRONG_PASSWORD, REQUIRED_PASSWORD (18.16 tells them apart; current
// servers answer AUTHENTICATION_FAILED to all three, so as not to say
// which users exist), and IP_ADDRESS_NOT_ALLOWED.
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeRequiredPassword     = 194
	codeIPAddressNotAllowed  = 195
	codeAuthenticationFailed = 516
)

// Check pings every address of cfg at once, each on its own connection to
// the server's default database (cfg.Database may not exist before the
// first migration). It returns nil as soon as one answers, a *ConfigError
// as soon as one fails for a reason of configuration, and else, once every
// address failed otherwise or after CheckTimeout (or ctx's deadline, if
// sooner), an error wrapping ErrUnreachable. If ctx is cancelled, it
// returns ctx.Err().
func Check(ctx context.Context, cfg chsink.Config) error {
	timeout := CheckTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	said := timeout.Round(100 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	type result struct {
		addr string
		err  error
	}
	results := make(chan result, len(cfg.Addr))
	for _, addr := range cfg.Addr {
		one := cfg
		one.Addr = []string{addr}
		one.DialTimeout, one.ReadTimeout = min(one.DialTimeout, timeout), min(one.ReadTimeout, timeout)
		go func() { results <- result{addr, ping(cctx, one)} }()
	}
	var down []string
	for range cfg.Addr {
		r := <-results
		switch {
		case r.err == nil:
			return nil
		case errors.Is(ctx.Err(), context.Canceled):
			return ctx.Err()
		}
		if cerr := classify(cfg, r.addr, r.err); cerr != nil {
			return cerr
		}
		if cctx.Err() != nil {
			down = append(down, fmt.Sprintf("%s: no answer within %s", r.addr, said))
			continue
		}
		down = append(down, fmt.Sprintf("%s: %s", r.addr, oneLine(r.err)))
	}
	return fmt.Errorf("%w of %s (%s)", ErrUnreachable, flagAddr, strings.Join(down, "; "))
}

func ping(ctx context.Context, cfg chsink.Config) error {
	conn, err := chsink.Open(cfg, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Ping(ctx)
}

// classify returns the *ConfigError that err from addr is, or nil when err
// is (or may be) the server's being unreachable.
func classify(cfg chsink.Config, addr string, err error) error {
	cause := oneLine(err)
	fail := func(flag, format string, a ...any) error {
		return &ConfigError{Addr: addr, Flag: flag, Err: err, Msg: fmt.Sprintf(format, a...) + " (" + cause + ")"}
	}
	var (
		ex        *clickhouse.Exception
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	tlsOn := cfg.TLS != nil
	switch {
	case errors.As(err, &ex):
		switch ex.Code {
		case codeUnknownUser, codeWrongPassword, codeRequiredPassword, codeAuthenticationFailed:
			return fail(flagPassword, "cannot authenticate to ClickHouse at %s as %q: wrong user name or password; check %s and %s (or %s_FILE)",
				addr, cfg.Username, flagUser, flagPassword, "PURCHASESYNC_CLICKHOUSE_PASSWORD")
		case codeIPAddressNotAllowed:
			return fail(flagUser, "cannot authenticate to ClickHouse at %s as %q: the user may not connect from this address (its <networks> in the server's users.xml); check %s", addr, cfg.Username, flagUser)
		}
		return fail(flagAddr, "cannot talk to ClickHouse at %s: it refused the connection; check %s and the server's logs", addr, flagAddr)
	case errors.As(err, &unknownCA):
		return fail(flagCAFile, "cannot verify the TLS certificate of ClickHouse at %s: it is signed by an unknown authority; set %s to the CA that signed the servers' certificates", addr, flagCAFile)
	case errors.As(err, &hostname):
		return fail(flagServerName, "cannot verify the TLS certificate of ClickHouse at %s: it is not valid for the name %s; set %s to a name it is valid for, or use that name in %s", addr, hostname.Host, flagServerName, flagAddr)
	case errors.As(err, &invalid):
		return fail(flagCAFile, "cannot verify the TLS certificate of ClickHouse at %s: the certificate is not valid; check the server's certificate and %s", addr, flagCAFile)
	case errors.As(err, &record):
		return fail(flagTLS, "cannot speak TLS to ClickHouse at %s: the port is not TLS; unset %s (and the -clickhouse.tls.* flags), or use the secure native port (9440 by default) in %s", addr, flagTLS, flagAddr)
	case strings.Contains(cause, "remote error: tls: "):
		return fail(flagTLS, "cannot complete the TLS handshake with ClickHouse at %s: check %s and the server's <openSSL> settings", addr, flagTLS)
	case !tlsOn && strings.Contains(cause, "handshake") &&
		(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		// The secure port reads our plaintext hello as a broken TLS
		// record and drops the connection.
		return fail(flagTLS, "cannot talk to ClickHouse at %s: it closed the connection during the handshake, as the secure native port does to a plaintext client; set %s, or use the plaintext native port (9000 by default) in %s", addr, flagTLS, flagAddr)
	}
	return nil
}

// oneLine is err's message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
