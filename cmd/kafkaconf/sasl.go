package kafkaconf

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// credError is a failure to produce this side's credentials at an
// authentication (an unreadable token file, AWS variables gone); flag is
// what fixes it. franz-go returns it from the connection attempt.
type credError struct {
	flag string
	err  error
}

func (e *credError) Error() string { return e.err.Error() }
func (e *credError) Unwrap() error { return e.err }

// mechanism is franz-go's SASL mechanism for c, nil without SASL. franz-go
// calls a mechanism's credential function at each authentication (each new
// connection, and each re-authentication the broker asks for), so the token
// file and the AWS variables are read there.
func (c Config) mechanism() (sasl.Mechanism, error) {
	s := c.SASL
	switch s.mechanism() {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case MechanismSCRAMSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case MechanismSCRAMSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	case MechanismOAuthBearer:
		token := newWatched(func() (string, error) { return readToken(s.TokenFile) }, s.TokenFile)
		// Read now, so that a missing file is an error at start.
		if _, err := token.get(); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", flagTokenFile, err)
		}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			t, err := token.get()
			if err != nil {
				return oauth.Auth{}, &credError{flagTokenFile, fmt.Errorf("cannot read %s: %w", flagTokenFile, err)}
			}
			return oauth.Auth{Token: t}, nil
		}), nil
	case MechanismAWSMSKIAM:
		return aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) {
			a := aws.Auth{
				AccessKey:    c.getenv(EnvAWSAccessKeyID),
				SecretKey:    c.getenv(EnvAWSSecretAccessKey),
				SessionToken: c.getenv(EnvAWSSessionToken),
			}
			if a.AccessKey == "" || a.SecretKey == "" {
				return a, &credError{EnvAWSAccessKeyID, fmt.Errorf("%s %s: %s or %s is no longer set", flagMechanism, MechanismAWSMSKIAM, EnvAWSAccessKeyID, EnvAWSSecretAccessKey)}
			}
			return a, nil
		}), nil
	}
	return nil, nil
}

// readToken reads an OAUTHBEARER token file, without surrounding blanks.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return t, nil
}
