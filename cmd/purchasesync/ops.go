package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Default ops listener addresses: a split deployment may run the ingest (or
// the control plane), the join and the sink on one host.
const (
	defaultOpsAddr     = "127.0.0.1:9464" // run, ingest, control; the sites CLI's default
	defaultJoinOpsAddr = "127.0.0.1:9465"
	defaultSinkOpsAddr = "127.0.0.1:9466"
)

// opsFlags are the ops listener's flags, which every long-running
// subcommand has.
type opsFlags struct {
	addr  *string
	pprof *bool
}

func addOpsFlags(fs *flagSet, defaultAddr string) opsFlags {
	return opsFlags{
		addr:  fs.String("ops.addr", defaultAddr, "ops listener: /metrics, /healthz, /readyz, and /admin/v1/ where the admin API is served"),
		pprof: fs.Bool("ops.pprof", false, "serve Go profiles under /debug/pprof/ on the ops listener (behind the admin token where there is one; loopback or a trusted network only)"),
	}
}

// actor is the ops listener of c with the stages' checks. admin, when not
// nil, is mounted under /admin/v1/, and its token guards /debug/pprof/.
func (f opsFlags) actor(c *common, checks []namedCheck, admin http.Handler, adminToken string) actor {
	o := &opsServer{addr: *f.addr, reg: c.reg, checks: checks, admin: admin, log: c.log.With("component", "ops"),
		pprof: *f.pprof, pprofToken: adminToken}
	return actor{name: "ops listener", run: o.run}
}

// opsServer is the ops listener: /metrics, /healthz, /readyz and the admin
// API under /admin/v1/ (mounted when admin is non-nil).
type opsServer struct {
	addr string
	reg  registry
	// checks are the stages' readiness: /readyz fails while a check that is
	// not advisory fails; /readyz?verbose lists every one.
	checks []namedCheck
	admin  http.Handler
	log    *slog.Logger
	// pprof mounts net/http/pprof under /debug/pprof/ (-ops.pprof): CPU
	// profiles of a live process are how throughput problems get found.
	pprof bool
	// pprofToken, when set (the admin token), is the bearer token
	// /debug/pprof/ asks for: a CPU profile or trace costs CPU, and is not
	// for whoever reaches the ops port.
	pprofToken string
}

func (o *opsServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{Registry: o.reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, body := readyReport(o.checks, r.URL.Query().Has("verbose"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	if o.admin != nil {
		mux.Handle("/admin/v1/", o.admin)
	}
	if o.pprof {
		mux.Handle("/debug/pprof/", o.bearer(pprof.Index))
		mux.Handle("/debug/pprof/profile", o.bearer(pprof.Profile))
		mux.Handle("/debug/pprof/trace", o.bearer(pprof.Trace))
	}
	return mux
}

// bearer lets a request through only with the pprof token, when there is
// one (compared in constant time).
func (o *opsServer) bearer(h http.HandlerFunc) http.Handler {
	if o.pprofToken == "" {
		return h
	}
	want := []byte("Bearer " + o.pprofToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized: /debug/pprof/ takes the admin token", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}

// readyReport answers /readyz: 503 naming the first failing check that is not
// advisory, else 200 "ready". verbose lists every check, one per line, in the
// style of the Kubernetes API server's /readyz?verbose ("[+]name ok",
// "[-]name not ready: why").
func readyReport(checks []namedCheck, verbose bool) (int, string) {
	status, first := http.StatusOK, ""
	var b strings.Builder
	for _, c := range checks {
		err := c.check()
		switch {
		case err == nil:
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		case c.advisory:
			fmt.Fprintf(&b, "[-]%s not ready (advisory, /readyz stays 200): %v\n", c.name, err)
		default:
			fmt.Fprintf(&b, "[-]%s not ready: %v\n", c.name, err)
			if status == http.StatusOK {
				status, first = http.StatusServiceUnavailable, fmt.Sprintf("not ready: %s: %v\n", c.name, err)
			}
		}
	}
	switch {
	case verbose && status == http.StatusOK:
		b.WriteString("ready\n")
		return status, b.String()
	case verbose:
		return status, b.String()
	case status == http.StatusOK:
		return status, "ready\n"
	}
	return status, first
}

// namedCheck is one stage's readiness (nil error = ready). An advisory check
// does not fail /readyz: in `run`, the ingest must keep taking webhooks
// (and stay behind its load balancer) while ClickHouse or the registry is
// down, since Kafka holds what they have not taken yet.
type namedCheck struct {
	name     string
	check    func() error
	advisory bool
}

// run serves until ctx ends, then shuts down within 5 s.
func (o *opsServer) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on ops address %s (-ops.addr): %w", o.addr, err)
	}
	// A body may not trickle in forever, and idle keep-alives close: the
	// ops port must stay reachable for the probes.
	srv := &http.Server{Handler: o.handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
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
