package adminapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource gives the Admin API access token of a shop
// ("name.myshopify.com").
type TokenSource interface {
	Token(shop string) (string, bool)
}

// Tokens is a fixed shop → token map. Its String, GoString and LogValue
// redact the tokens, so printing or logging one by mistake leaks nothing.
type Tokens map[string]string

// Token implements TokenSource.
func (t Tokens) Token(shop string) (string, bool) {
	v, ok := t[strings.ToLower(shop)]
	return v, ok && v != ""
}

func (t Tokens) String() string   { return fmt.Sprintf("[%d Shopify access tokens, redacted]", len(t)) }
func (t Tokens) GoString() string { return t.String() }

// LogValue implements slog.LogValuer.
func (t Tokens) LogValue() slog.Value { return slog.StringValue(t.String()) }

// ParseTokens reads tokens from a JSON object {"shop.myshopify.com": "token"}
// or from a comma-separated list "shop.myshopify.com=token,...".
func ParseTokens(s string) (Tokens, error) {
	s = strings.TrimSpace(s)
	out := Tokens{}
	if s == "" {
		return out, nil
	}
	if strings.HasPrefix(s, "{") {
		var m map[string]string
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			// json's message can quote the input: keep it out of the error.
			return nil, fmt.Errorf("cannot decode access tokens: want a JSON object of shop domain to token strings")
		}
		for k, v := range m {
			out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		return out, nil
	}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		shop, tok, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(shop) == "" || strings.TrimSpace(tok) == "" {
			return nil, fmt.Errorf("cannot parse access tokens: entry %d is not shop.myshopify.com=token", i+1)
		}
		out[strings.ToLower(strings.TrimSpace(shop))] = strings.TrimSpace(tok)
	}
	return out, nil
}

// TokenFile reads tokens from a JSON file and re-reads it when it changes,
// so an outside job can rotate expiring tokens without a restart. The file
// is checked at most every CheckEvery.
type TokenFile struct {
	path       string
	CheckEvery time.Duration

	mu      sync.Mutex
	tokens  Tokens
	modTime time.Time
	size    int64
	checked time.Time
}

// NewTokenFile loads path once; a missing or malformed file is an error.
func NewTokenFile(path string) (*TokenFile, error) {
	f := &TokenFile{path: path, CheckEvery: 5 * time.Second}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *TokenFile) reload() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("cannot read access tokens file: %w", err)
	}
	if st.ModTime().Equal(f.modTime) && st.Size() == f.size && f.tokens != nil {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("cannot read access tokens file: %w", err)
	}
	t, err := ParseTokens(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	f.tokens, f.modTime, f.size = t, st.ModTime(), st.Size()
	return nil
}

// Exposed reports whether the file's permissions let its group or other
// users read it, and the mode: the tokens grant read_orders on merchants'
// stores. (It is a warning, not a refusal: a mounted Kubernetes secret is
// 0644 unless its defaultMode says otherwise.)
func (f *TokenFile) Exposed() (os.FileMode, bool) {
	st, err := os.Stat(f.path)
	if err != nil {
		return 0, false
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o077 != 0
}

// Token implements TokenSource. A file that became unreadable keeps the
// last good tokens: a rotation job's half-written file must not cut us off.
func (f *TokenFile) Token(shop string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) >= f.CheckEvery {
		f.checked = time.Now()
		_ = f.reload()
	}
	return f.tokens.Token(shop)
}

// String redacts, like Tokens.
func (f *TokenFile) String() string { return "access tokens from " + f.path }

// MultiTokens asks each source in turn; the first that has the shop wins.
type MultiTokens []TokenSource

// Token implements TokenSource.
func (m MultiTokens) Token(shop string) (string, bool) {
	for _, s := range m {
		if s == nil {
			continue
		}
		if t, ok := s.Token(shop); ok {
			return t, true
		}
	}
	return "", false
}
