package appauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/internal/follow"
	"purchasesync/schemas"
	"purchasesync/schemas/health"
)

// Installation is what the store knows of a shop's install.
type Installation struct {
	Shop        string
	Scopes      []string
	InstalledAt time.Time
}

// tokenRecord is the plaintext of a shopify.tokens.v1 value.
type tokenRecord struct {
	AccessToken string    `json:"access_token"`
	Scope       string    `json:"scope"` // Shopify's comma-separated handles
	InstalledAt time.Time `json:"installed_at"`
}

type entry struct {
	token       string
	scopes      []string
	installedAt time.Time
}

// StoreDeps are the store's collaborators.
type StoreDeps struct {
	// KafkaOpts are the base Kafka options; the store builds its follower.
	KafkaOpts []kgo.Opt
	// Producer writes tokens (acks=all); nil makes the store read-only
	// (Put and Forget fail).
	Producer   *kgo.Client
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Store is the per-shop access token store on the compacted topic
// shopify.tokens.v1, followed into memory (see the package doc). It is an
// adminapi.TokenSource. Its methods are safe for concurrent use.
type Store struct {
	cfg      StoreConfig
	keys     *Keyring
	producer *kgo.Client
	log      *slog.Logger
	m        *storeMetrics

	mu     sync.RWMutex
	shops  map[string]entry
	logged map[string]bool // key ids whose decryption failure was logged

	follow *follow.Follower
	health *health.Health
}

// NewStore builds a store; Run loads and follows the topic.
func NewStore(cfg StoreConfig, keys *Keyring, deps StoreDeps) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("appauth: the token store needs keys (PURCHASESYNC_TOKEN_KEY)")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, keys: keys, producer: deps.Producer, log: log, m: newStoreMetrics(reg),
		shops: map[string]entry{}, logged: map[string]bool{}}
	s.health = health.New("token store", "tokens_", reg, log)
	s.follow = follow.New(follow.Topic{
		Name: cfg.topic(), KafkaOpts: deps.KafkaOpts, Apply: s.apply, OnLoaded: s.loaded,
		Health: s.health, HealthInterval: cfg.HealthInterval, ReadyTimeout: cfg.ReadyTimeout,
		Stage: "token store", Log: log,
	})
	return s, nil
}

// Token implements adminapi.TokenSource.
func (s *Store) Token(shop string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.shops[strings.ToLower(shop)]
	return e.token, ok && e.token != ""
}

// Scopes are the scopes Shopify granted with the shop's stored token (nil
// without one).
func (s *Store) Scopes(shop string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.shops[strings.ToLower(shop)].scopes...)
}

// Installed returns the shop's install, if the store has its token.
func (s *Store) Installed(shop string) (Installation, bool) {
	shop = strings.ToLower(shop)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.shops[shop]
	return Installation{Shop: shop, Scopes: append([]string(nil), e.scopes...), InstalledAt: e.installedAt}, ok
}

// String redacts, like adminapi.Tokens.
func (s *Store) String() string { return "access tokens from " + s.cfg.topic() }

// Ready is nil once the topic is loaded and while Kafka answers.
func (s *Store) Ready() error { return s.health.Err() }

// WaitReady blocks until the topic is loaded or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error { return s.follow.WaitLoaded(ctx) }

// Put stores the shop's token and granted scopes (synchronous produce,
// acks=all): nil means Kafka holds it, and Token answers with it at once.
func (s *Store) Put(ctx context.Context, shop, token string, scopes []string) error {
	shop, ok := schemas.NormalizeShopDomain(shop)
	if !ok || token == "" {
		return errors.New("appauth: Put needs a shop domain and a token")
	}
	if s.producer == nil {
		return errors.New("appauth: the token store is read-only here (no producer)")
	}
	rec := tokenRecord{AccessToken: token, Scope: strings.Join(scopes, ","), InstalledAt: time.Now().UTC()}
	pt, _ := json.Marshal(rec)
	val := s.keys.Seal(shop, pt)
	if err := s.producer.ProduceSync(ctx, &kgo.Record{Topic: s.cfg.topic(), Key: []byte(shop), Value: val}).FirstErr(); err != nil {
		return fmt.Errorf("cannot store the access token of %s in %s: %w", shop, s.cfg.topic(), err)
	}
	s.set(shop, entry{token: token, scopes: splitScopes(rec.Scope), installedAt: rec.InstalledAt})
	return nil
}

// Forget deletes the shop's token (a tombstone, synchronous).
func (s *Store) Forget(ctx context.Context, shop string) error {
	shop = strings.ToLower(strings.TrimSpace(shop))
	if s.producer == nil {
		return errors.New("appauth: the token store is read-only here (no producer)")
	}
	if err := s.producer.ProduceSync(ctx, &kgo.Record{Topic: s.cfg.topic(), Key: []byte(shop)}).FirstErr(); err != nil {
		return fmt.Errorf("cannot forget the access token of %s in %s: %w", shop, s.cfg.topic(), err)
	}
	s.set(shop, entry{})
	return nil
}

func splitScopes(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// set stores e (a zero e deletes).
func (s *Store) set(shop string, e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.token == "" {
		delete(s.shops, shop)
	} else {
		s.shops[shop] = e
	}
	s.m.tokens.Set(float64(len(s.shops)))
}

// apply applies a batch of records read from the topic.
func (s *Store) apply(recs []*kgo.Record) {
	for _, r := range recs {
		s.applyOne(r)
	}
}

func (s *Store) applyOne(r *kgo.Record) {
	s.m.records.Inc()
	shop := string(r.Key)
	if r.Value == nil {
		s.set(shop, entry{})
		return
	}
	pt, keyID, err := s.keys.Open(shop, r.Value)
	var rec tokenRecord
	if err == nil {
		if jerr := json.Unmarshal(pt, &rec); jerr != nil || rec.AccessToken == "" {
			err = errors.New("token record: decrypted, but not a token record")
		}
	}
	if err != nil {
		s.m.undecryptable.Inc()
		s.mu.Lock()
		first := !s.logged[keyID]
		s.logged[keyID] = true
		// The shop keeps no token: a value we cannot read is no token.
		delete(s.shops, shop)
		s.m.tokens.Set(float64(len(s.shops)))
		s.mu.Unlock()
		if first {
			s.log.Error("token store: a record does not decrypt; its shop has no token until it installs again or the key is configured (logged once per key id)",
				"key_id", keyID, "shop", shop, "offset", r.Offset, "err", err)
		}
		return
	}
	s.set(shop, entry{token: rec.AccessToken, scopes: splitScopes(rec.Scope), installedAt: rec.InstalledAt})
}

// Run reads the topic from its start, then follows it, until ctx ends.
// Kafka faults never end it: it retries until loaded, then follows through
// outages (one log line per episode).
func (s *Store) Run(ctx context.Context) error { return s.follow.Run(ctx) }

// loaded logs that the store holds the whole topic.
func (s *Store) loaded() {
	s.mu.RLock()
	n := len(s.shops)
	s.mu.RUnlock()
	s.log.Info("token store loaded", "shops", n, "keys", s.keys)
}
