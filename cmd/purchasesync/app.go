package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/ingest/shopify"
	"purchasesync/processors/control"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/appauth"
	"purchasesync/processors/control/page"
	"purchasesync/processors/sites"
)

// appFlags configure the merchant's side of the Shopify app: the token
// store, OAuth on the public app listener, and the uninstall processor.
type appFlags struct {
	addr     *string
	baseURL  *string
	apiKey   *string
	oauthURL *string
	scopes   *string
	tokenKey *string
	secret   *string // -shopify.apiSecret, shared with the ingest in `run`
}

// addAppFlags registers the app flags; secret is the ingest's
// -shopify.apiSecret when the subcommand has it (run), nil to define it.
func addAppFlags(fs *flagSet, secret *string) *appFlags {
	d := appauth.DefaultConfig()
	if secret == nil {
		secret = fs.SecretEnv("shopify.apiSecret", secretEnv,
			"Shopify app secret(s), comma-separated during a rotation (the first is the current one): OAuth and session tokens are checked with them")
	}
	return &appFlags{
		secret:   secret,
		addr:     fs.String("app.addr", "", "public app listener for Shopify OAuth (/auth/shopify) and the app page, e.g. 127.0.0.1:8081 behind the HTTPS proxy of -app.baseURL; empty: off (never the ops listener)"),
		baseURL:  fs.String("app.baseURL", "", "public HTTPS base URL of the app listener as merchants' browsers reach it; the OAuth callback is it + /auth/shopify/callback, which the app's settings must allow. Required with -app.addr"),
		apiKey:   fs.String("shopify.apiKey", "", "the app's API key (client id) from the Partner Dashboard; required with -app.addr"),
		oauthURL: fs.String("shopify.oauthURL", d.OAuthURL, "Shopify OAuth endpoint template with {shop} (/authorize and /access_token are appended); override only for tests and fakes"),
		scopes:   fs.String("shopify.scopes", strings.Join(d.Scopes, ","), "access scopes requested at install and re-authorization, comma-separated; must include read_orders"),
		tokenKey: fs.Secret("token.key", "AES-256 key(s) encrypting the access tokens in shopify.tokens.v1: id:base64,id2:base64 (32 bytes each, `openssl rand -base64 32`); the first encrypts, all decrypt (rotation: put the new key first). Empty: no token store, OAuth off"),
	}
}

// appParts is what buildApp adds to a control-plane process.
type appParts struct {
	store  *appauth.Store // nil without -token.key
	actors []actor        // token store, uninstall processor, app listener
}

// tokenStore builds the token store when -token.key is set.
func (f *appFlags) tokenStore(c *common, producer *kgo.Client) (*appauth.Store, error) {
	if f == nil || *f.tokenKey == "" {
		return nil, nil
	}
	keys, err := appauth.ParseKeys(*f.tokenKey)
	if err != nil {
		return nil, fmt.Errorf("-token.key (PURCHASESYNC_TOKEN_KEY): %w", err)
	}
	cfg := appauth.DefaultStoreConfig()
	cfg.Topics = c.topics
	return appauth.NewStore(cfg, keys, appauth.StoreDeps{
		KafkaOpts: c.kafka.baseOpts(c.log, nil, "tokens"), Producer: producer,
		Registerer: c.stageReg("appauth"), Logger: c.log.With("component", "tokens"),
	})
}

// buildApp builds the uninstall processor and, with -app.addr, the OAuth
// handlers on the app listener. store may be nil (no -token.key): then
// uninstalls only turn syncing off, and OAuth cannot run.
func (f *appFlags) buildApp(c *common, store *appauth.Store, api *adminapi.Client, writer sites.Writer, publicBaseURL string, pg pageDeps) (appParts, error) {
	var p appParts
	if store != nil {
		p.actors = append(p.actors, actor{"token store", store.Run, store.Ready})
	}
	ucfg := appauth.DefaultUninstallConfig()
	ucfg.Topics = c.topics
	deps := appauth.UninstallDeps{Sites: c.sites, Writer: writer, KafkaOpts: c.kafka.baseOpts(c.log, nil, "appuninstall"),
		Registerer: c.stageReg("appauth"), Logger: c.log.With("component", "appuninstall")}
	if store != nil {
		deps.Tokens = store
	}
	un, err := appauth.NewUninstaller(ucfg, deps)
	if err != nil {
		return p, err
	}
	// It also needs the stored tokens, to forget the shop's.
	p.actors = append(p.actors, c.afterSites("uninstall processor", func(ctx context.Context) error {
		if store != nil {
			if err := store.WaitReady(ctx); err != nil {
				return nil
			}
		}
		return un.Run(ctx)
	}, un.Ready))
	if f == nil || *f.addr == "" {
		return p, nil
	}
	if store == nil {
		return p, errors.New("-app.addr needs the token store: set PURCHASESYNC_TOKEN_KEY (or its _FILE), see -token.key")
	}
	cfg := appauth.DefaultConfig()
	secrets, _, err := shopify.ParseSecrets(splitList(*f.secret))
	if err != nil {
		return p, fmt.Errorf("-shopify.apiSecret (%s): %w", secretEnv, err)
	}
	for _, s := range secrets {
		cfg.APISecrets = append(cfg.APISecrets, string(s))
	}
	cfg.APIKey, cfg.AppBaseURL, cfg.OAuthURL, cfg.Scopes = *f.apiKey, *f.baseURL, *f.oauthURL, splitList(*f.scopes)
	if publicBaseURL != "" {
		cfg.WebhookURL = strings.TrimSuffix(publicBaseURL, "/") + control.WebhookPath
	}
	h, err := appauth.New(cfg, appauth.Deps{Tokens: store, Shopify: api, Registerer: c.stageReg("appauth"), Logger: c.log.With("component", "oauth")})
	if err != nil {
		return p, err
	}
	mux := appMux(h)
	pcfg := page.DefaultConfig()
	pcfg.APIKey, pcfg.APISecret, pcfg.MinMatches = cfg.APIKey, cfg.APISecrets[0], pg.minMatches
	pg2, err := page.New(pcfg, page.Deps{
		Sites: c.sites, Switch: pg.sw, Shopify: api, Stats: pg.stats, Evidence: pg.evidence,
		VerifySession: func(tok string) (string, error) {
			st, err := h.VerifySessionToken(tok)
			if err != nil {
				return "", err
			}
			return st.Shop, nil
		},
		HasToken:    func(shop string) bool { _, ok := store.Token(shop); return ok },
		Exchange:    func(ctx context.Context, tok string) error { _, err := h.ExchangeSessionToken(ctx, tok); return err },
		InstallPath: appauth.PathStart,
		Registerer:  c.stageReg("page"), Logger: c.log.With("component", "page"),
	})
	if err != nil {
		return p, err
	}
	pg2.Register(mux)
	srv := &appServer{addr: *f.addr, handler: mux, log: c.log.With("component", "app")}
	p.actors = append(p.actors, actor{name: "app listener", run: srv.run})
	return p, nil
}

// pageDeps are what the merchant page needs besides the app's own parts.
type pageDeps struct {
	sw         page.Switch
	stats      page.Stats // nil: no figures
	evidence   page.Evidence
	minMatches int
}

// appMux is the public app listener's routes: Shopify OAuth under
// /auth/shopify. The merchant's page (processors/control/page) mounts its
// routes (/app, its form and stylesheet) on the same mux.
func appMux(h *appauth.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	h.Mount(mux)
	return mux
}

// appServer is the public app listener (-app.addr).
type appServer struct {
	addr    string
	handler http.Handler
	log     *slog.Logger
}

func (a *appServer) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on app address %s (-app.addr): %w", a.addr, err)
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("app listener up", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("app listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("app listener shutdown: %w", err)
	}
	return nil
}
