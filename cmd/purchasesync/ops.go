package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsServer is the ops listener: /metrics, /healthz, /readyz and the admin
// API under /admin/v1/ (mounted when admin is non-nil).
type opsServer struct {
	addr  string
	reg   registry
	ready func() error // nil error = ready
	admin http.Handler
	log   *slog.Logger
	// pprof mounts net/http/pprof under /debug/pprof/ (-ops.pprof): CPU
	// profiles of a live process are how throughput problems get found.
	pprof bool
}

func (o *opsServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{Registry: o.reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if o.ready != nil {
			if err := o.ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	if o.admin != nil {
		mux.Handle("/admin/v1/", o.admin)
	}
	if o.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// allReady is a readiness check of several stages: the first that is not
// ready says why, prefixed with its name.
func allReady(checks ...namedCheck) func() error {
	return func() error {
		for _, c := range checks {
			if err := c.check(); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
		return nil
	}
}

// namedCheck is one stage's readiness (nil error = ready).
type namedCheck struct {
	name  string
	check func() error
}

// run serves until ctx ends, then shuts down within 5 s.
func (o *opsServer) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on ops address %s (-ops.addr): %w", o.addr, err)
	}
	srv := &http.Server{Handler: o.handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	o.log.Info("ops listener up", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("ops listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops listener shutdown: %w", err)
	}
	return nil
}
