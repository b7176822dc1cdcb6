package registrar

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/registrar/registrartest"
	"purchasesync/sinks/sinktest"
)

// registry is the fake registry behind a switch that makes it answer 503
// to everything, as one that is down does (sinktest.Destination).
type registry struct {
	*registrartest.Talkable
	URL  string
	down atomic.Bool
}

func newRegistry(t *testing.T) *registry {
	r := &registry{Talkable: registrartest.New("k3y")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, `{"ok":false,"error_message":"Service Unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		r.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *registry) SetDown(down bool) { r.down.Store(down) }

// Written: the registry keeps one origin per purchase, however often it
// is posted.
func (r *registry) Written() map[string]int {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	out := make(map[string]int, len(r.Origins))
	for key := range r.Origins {
		out[key] = 1
	}
	return out
}

// TestRegistrarConformance: the registrar keeps the committing consumers'
// promises (sinks/sinktest) against the fake registry. Its readiness
// follows Kafka alone: a registry outage is retried (up to MaxAttempts,
// here more than the outage lasts) without a word to /readyz.
func TestRegistrarConformance(t *testing.T) {
	topics := schemas.Topics{Prefix: "t."}
	in := topics.Name(schemas.TopicPurchases)
	sinktest.Run(t, sinktest.Features{Idempotent: true, DeadLetters: true},
		sinktest.Harness[*registry]{
			Input:      in,
			Topics:     []string{in, topics.Name(schemas.TopicDeadLetter)},
			DeadLetter: topics.Name(schemas.TopicDeadLetter),
			Item: func(i int) (string, *kgo.Record) {
				p := purchase("acme", fmt.Sprint(1000+i), 1)
				b, _ := schemas.MarshalPurchase(p)
				return p.Key(), &kgo.Record{Topic: in, Key: []byte(p.Key()), Value: b}
			},
			Poison:      func() *kgo.Record { return &kgo.Record{Topic: in, Key: []byte("acme/bad"), Value: []byte("{")} },
			Destination: newRegistry,
			New: func(t *testing.T, env sinktest.Env, reg *registry) sinktest.Consumer {
				cfg := DefaultConfig()
				cfg.URL, cfg.APIKey, cfg.Topics, cfg.Group = reg.URL, "k3y", topics, env.Group
				cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
				cfg.MaxAttempts = 1000
				r, err := New(cfg, Deps{KafkaOpts: env.KafkaOpts, Registerer: prometheus.NewRegistry(), Logger: env.Logger})
				if err != nil {
					t.Fatal(err)
				}
				return r
			},
		})
}
