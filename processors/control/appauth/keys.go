package appauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Envelope layout of a shopify.tokens.v1 value (all of it is public except
// what the ciphertext hides):
//
//	byte 0        envelopeVersion (1)
//	byte 1        n, the length of the key id
//	bytes 2..2+n  the key id (ASCII, [A-Za-z0-9_-]{1,32})
//	12 bytes      the AES-GCM nonce (random)
//	the rest      AES-256-GCM ciphertext of the JSON record, with its tag
//
// The additional data is the header (version, length and key id) followed
// by the record key (the shop domain): a value cannot be moved to another
// shop's key, nor relabelled with another key id, without failing to open.
const envelopeVersion = 1

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// DefaultKeyID is the id of a key given without one ("base64" alone).
const DefaultKeyID = "k1"

// Keyring holds the token encryption keys: the first encrypts, all decrypt
// (key rotation: put the new key first, keep the old ones until every
// record was rewritten). Its String and LogValue show only the key ids.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ErrUnknownKey: the envelope names a key id the keyring does not hold.
var ErrUnknownKey = errors.New("token record encrypted with a key id not configured in PURCHASESYNC_TOKEN_KEY")

// ErrUndecryptable: the envelope is malformed or does not open with its key.
var ErrUndecryptable = errors.New("token record does not decrypt (wrong key for its key id, or a corrupt record)")

// ParseKeys reads "id:base64,id2:base64" (or one "base64", id k1): each
// key is 32 bytes in standard or URL-safe base64, padded or not. Errors
// never quote a key.
func ParseKeys(s string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			id, b64 = DefaultKeyID, part
		}
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("token key %d: the key id must be 1 to 32 of [A-Za-z0-9_-]", i+1)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("token key %d: key id %s is listed twice", i+1, id)
		}
		raw, err := decodeKey(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("token key %d (%s): want 32 random bytes in base64 (e.g. `openssl rand -base64 32`)", i+1, id)
		}
		block, _ := aes.NewCipher(raw) // 32 bytes: AES-256, cannot fail
		aead, _ := cipher.NewGCM(block)
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
	}
	if len(k.ids) == 0 {
		return nil, errors.New("no token key")
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// IDs are the key ids, the encrypting one first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

func (k *Keyring) String() string {
	return fmt.Sprintf("[token keys %s, redacted]", strings.Join(k.ids, ","))
}

// LogValue implements slog.LogValuer.
func (k *Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

func header(id string) []byte {
	return append([]byte{envelopeVersion, byte(len(id))}, id...)
}

// Seal encrypts plaintext for shop with the first key.
func (k *Keyring) Seal(shop string, plaintext []byte) []byte {
	id := k.ids[0]
	aead := k.aeads[id]
	h := header(id)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand never fails (it panics instead)
	out := append(append([]byte{}, h...), nonce...)
	return aead.Seal(out, nonce, plaintext, append(h, shop...))
}

// Open decrypts an envelope of shop; it returns the key id it names (also
// with an error, when the envelope is readable that far).
func (k *Keyring) Open(shop string, env []byte) (plaintext []byte, keyID string, err error) {
	if len(env) < 2 || env[0] != envelopeVersion || len(env) < 2+int(env[1]) {
		return nil, "", ErrUndecryptable
	}
	n := int(env[1])
	keyID = string(env[2 : 2+n])
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, keyID, ErrUnknownKey
	}
	rest := env[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, keyID, ErrUndecryptable
	}
	nonce, ct := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, append(header(keyID), shop...))
	if err != nil {
		return nil, keyID, ErrUndecryptable
	}
	return pt, keyID, nil
}
