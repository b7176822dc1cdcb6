package kafkaconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CheckTimeout bounds Check unless its context ends sooner.
const CheckTimeout = 10 * time.Second

// ErrUnreachable is what Check returns, wrapped with each broker's error,
// when no seed broker answered: connection refused, timeouts, unknown
// hosts. It is not a configuration error but a cluster that is down or not
// up yet; a long-running process goes on, and its clients retry.
var ErrUnreachable = errors.New("cannot reach any Kafka broker")

// ConfigError is a connection that failed in a way retrying cannot mend: a
// wrong password, an unknown CA, TLS against a plaintext listener, ... Its
// message is one line naming the flag that fixes it; it never contains a
// secret.
type ConfigError struct {
	Broker string // the seed broker, host:port
	Flag   string // the flag (or variable) that fixes it, such as "-kafka.sasl.password"
	Msg    string // the whole message
	Err    error  // what franz-go or crypto/tls reported
}

func (e *ConfigError) Error() string { return e.Msg }
func (e *ConfigError) Unwrap() error { return e.Err }

// Check connects to the seed brokers with c, all at once, and issues one
// Metadata request to each (for no topic), so that TLS and SASL run. It
// returns nil as soon as one broker answers, a *ConfigError as soon as one
// fails for a reason of configuration, and else, once every broker failed
// otherwise or after CheckTimeout (or ctx's deadline, if sooner), an error
// wrapping ErrUnreachable. If ctx is cancelled, it returns ctx.Err().
func (c Config) Check(ctx context.Context) error {
	opts, err := c.Opts()
	if err != nil {
		return err
	}
	seen := &failures{}
	// No logger: the verdict is the one line.
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(seen))...)
	if err != nil {
		return fmt.Errorf("cannot create a Kafka client; check %s: %w", flagBrokers, err)
	}
	defer cl.Close()
	timeout := CheckTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	// What the message says: the caller's deadline as the caller wrote it
	// (300ms, not the 299ms left after building the client).
	said := timeout.Round(time.Millisecond)
	if timeout >= 100*time.Millisecond {
		said = timeout.Round(100 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	seeds := cl.SeedBrokers()
	type result struct {
		addr string
		err  error
	}
	results := make(chan result, len(seeds))
	for i, b := range seeds {
		addr := "seed " + strconv.Itoa(i)
		if i < len(c.Brokers) {
			addr = c.Brokers[i]
		}
		go func() {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{} // none; nil would be all
			_, err := b.Request(cctx, req)
			results <- result{addr, err}
		}()
	}
	var down []string
	for range seeds {
		r := <-results
		switch {
		case r.err == nil:
			return nil
		case errors.Is(ctx.Err(), context.Canceled):
			return ctx.Err()
		case errors.Is(r.err, context.DeadlineExceeded) && cctx.Err() != nil:
			down = append(down, fmt.Sprintf("%s: no answer within %s", r.addr, said))
			continue
		}
		if cerr := c.classify(r.addr, r.err, seen.last(r.addr)); cerr != nil {
			return cerr
		}
		down = append(down, fmt.Sprintf("%s: %s", r.addr, oneLine(r.err)))
	}
	return fmt.Errorf("%w of %s (%s)", ErrUnreachable, flagBrokers, strings.Join(down, "; "))
}

// failures records, per broker address, the request that failed (key -1:
// the dial, which includes the TLS handshake). Check makes one connection
// attempt per broker.
type failures struct {
	mu   sync.Mutex
	keys map[string]int16
}

func (f *failures) set(meta kgo.BrokerMetadata, key int16, first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]int16{}
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if _, ok := f.keys[addr]; !ok || !first {
		f.keys[addr] = key
	}
}

func (f *failures) last(addr string) int16 {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "9092") // franz-go's default port
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.keys[addr]; ok {
		return k
	}
	return -1
}

// OnBrokerConnect is called when a connection attempt ends, after the
// requests that initialise it (ApiVersions, SASL): an error here without
// a failed request before is the dial's.
func (f *failures) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		f.set(meta, keyDial, true)
	}
}

func (f *failures) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if e2e.Err() != nil {
		f.set(meta, key, false)
	}
}

// Request keys, for the failed request.
const (
	keyMetadata               = 3
	keySASLHandshake          = 17
	keyAPIVersions            = 18
	keySASLAuthenticate       = 36
	keyDial             int16 = -1
)

// classify returns the *ConfigError that err from broker addr is, or nil
// when err is (or may be) the cluster's being unreachable. key is the last
// request that failed on that broker.
func (c Config) classify(addr string, err error, key int16) error {
	cause := oneLine(err)
	fail := func(flag, format string, a ...any) error {
		return &ConfigError{Broker: addr, Flag: flag, Err: err,
			Msg: fmt.Sprintf(format, a...) + " (" + cause + ")"}
	}
	mech := c.SASL.kafkaName()
	var (
		cred      *credError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		firstEOF  *kgo.ErrFirstReadEOF
	)
	switch {
	case errors.As(err, &cred):
		return fail(cred.flag, "cannot authenticate to Kafka at %s", addr)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return c.refused(addr, err, cause)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fail(flagMechanism, "cannot authenticate to Kafka at %s: its listener does not offer SASL mechanism %s; change %s", addr, mech, flagMechanism)
	case errors.Is(err, kerr.IllegalSaslState):
		return fail(flagMechanism, "cannot authenticate to Kafka at %s: its listener does not use SASL; unset %s, or use the SASL listener's port in %s", addr, flagMechanism, flagBrokers)
	case errors.As(err, &unknownCA):
		return fail(flagCAFile, "cannot verify the TLS certificate of Kafka at %s: it is signed by an unknown authority; set %s to the CA that signed the brokers' certificates", addr, flagCAFile)
	case errors.As(err, &hostname):
		return fail(flagServerName, "cannot verify the TLS certificate of Kafka at %s: it is not valid for the name %s; set %s to a name it is valid for, or use that name in %s", addr, hostname.Host, flagServerName, flagBrokers)
	case errors.As(err, &invalid):
		return fail(flagCAFile, "cannot verify the TLS certificate of Kafka at %s: the certificate is not valid; check the brokers' certificates and %s", addr, flagCAFile)
	case errors.As(err, &record):
		return fail(flagTLS, "cannot speak TLS to Kafka at %s: the listener is not TLS; unset %s (and the -kafka.tls.* flags), or use the TLS listener's port in %s", addr, flagTLS, flagBrokers)
	case strings.Contains(cause, "remote error: tls: "):
		if strings.Contains(cause, "certificate") {
			return fail(flagCertFile, "cannot complete the TLS handshake with Kafka at %s: it refused our client certificate or wants one; set %s and %s to a certificate its CA signed", addr, flagCertFile, flagKeyFile)
		}
		return fail(flagTLS, "cannot complete the TLS handshake with Kafka at %s: check %s and the listener's TLS settings", addr, flagTLS)
	case strings.Contains(cause, "tls alert record"):
		// franz-go read a TLS alert as a response size: plaintext to TLS.
		return fail(flagTLS, "cannot talk to Kafka at %s: its listener is TLS; set %s", addr, flagTLS)
	case strings.Contains(cause, "'HTTP' in ascii"):
		return fail(flagBrokers, "cannot talk to Kafka at %s: an HTTP server answers on that port; check %s", addr, flagBrokers)
	case strings.Contains(cause, "cannot determine the region"):
		return fail(flagBrokers, "cannot authenticate to Kafka at %s with AWS_MSK_IAM: the region must be in the broker's host name (b-1.NAME.ID.c2.kafka.REGION.amazonaws.com); check %s", addr, flagBrokers)
	case errors.As(err, &firstEOF) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return c.closed(addr, err, key, cause)
	}
	return nil
}

// refused is the broker's SASL_AUTHENTICATION_FAILED: credentials refused.
func (c Config) refused(addr string, err error, cause string) error {
	e := &ConfigError{Broker: addr, Err: err}
	switch m := c.SASL.mechanism(); m {
	case MechanismOAuthBearer:
		e.Flag = flagTokenFile
		e.Msg = fmt.Sprintf("cannot authenticate to Kafka at %s with OAUTHBEARER: it refused the token in %s (expired, or for another audience?)", addr, flagTokenFile)
	case MechanismAWSMSKIAM:
		e.Flag = EnvAWSAccessKeyID
		e.Msg = fmt.Sprintf("cannot authenticate to Kafka at %s with AWS_MSK_IAM: it refused the credentials of %s, %s and %s; check them and their IAM policy", addr, EnvAWSAccessKeyID, EnvAWSSecretAccessKey, EnvAWSSessionToken)
	default:
		e.Flag = flagPassword
		e.Msg = fmt.Sprintf("cannot authenticate to Kafka at %s as %q with %s: wrong user name or password; check %s and %s", addr, c.SASL.Username, c.SASL.kafkaName(), flagUsername, flagPassword)
	}
	e.Msg += " (" + cause + ")"
	return e
}

// closed is a broker that closed the connection at once. Which request it
// closed on tells why: the TLS handshake (a plaintext listener), ApiVersions
// (a TLS listener), a SASL step (credentials, as kfake and brokers before
// Kafka 1.0 refuse them) or the first request after ApiVersions (SASL
// required).
func (c Config) closed(addr string, err error, key int16, cause string) error {
	// franz-go's guess in ErrFirstReadEOF's message is ours to make
	// here: quote only what it wraps (EOF).
	var fe *kgo.ErrFirstReadEOF
	if errors.As(err, &fe) && fe.Unwrap() != nil {
		cause = oneLine(fe.Unwrap())
	}
	fail := func(flag, format string, a ...any) error {
		return &ConfigError{Broker: addr, Flag: flag, Err: err, Msg: fmt.Sprintf(format, a...) + " (" + cause + ")"}
	}
	tlsOn, saslOn := c.TLS.On(), c.SASL.mechanism() != ""
	switch {
	case key == keyDial && tlsOn:
		return fail(flagTLS, "cannot speak TLS to Kafka at %s: it closed the connection during the TLS handshake, as a plaintext listener does; unset %s (and the -kafka.tls.* flags), or use the TLS listener's port in %s", addr, flagTLS, flagBrokers)
	case (key == keySASLHandshake || key == keySASLAuthenticate) && saslOn:
		m := c.SASL.kafkaName()
		return fail(flagPassword, "cannot authenticate to Kafka at %s as %q with %s: it closed the connection, as it does for a wrong user name or password or a mechanism it does not offer; check %s, %s and %s", addr, c.SASL.Username, m, flagPassword, flagUsername, flagMechanism)
	case key == keyAPIVersions && !tlsOn:
		return fail(flagTLS, "cannot talk to Kafka at %s: it closed the connection at once, as a TLS listener does to a plaintext client; set %s", addr, flagTLS)
	case key == keyMetadata && !saslOn:
		return fail(flagMechanism, "cannot talk to Kafka at %s: it closed the connection after the first request, as a SASL listener does to a client without SASL; set %s", addr, flagMechanism)
	case !tlsOn && !saslOn:
		return fail(flagTLS, "cannot talk to Kafka at %s: it closed the connection at once, as a TLS or SASL listener does to a client without them; set %s and/or %s", addr, flagTLS, flagMechanism)
	}
	return nil // closed for another reason: perhaps a broker going down
}

// oneLine is err's message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
