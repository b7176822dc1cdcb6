package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/schemas/retry"
)

// Client calls the Admin GraphQL API of many shops.
type Client struct {
	cfg    Config
	http   *http.Client
	tokens TokenSource
	log    *slog.Logger
	m      *metrics

	mu       sync.Mutex
	buckets  map[string]bucket  // shop → last reported throttle status
	lastCost map[string]float64 // operation → last requested cost
}

// bucket is a shop's throttle status as of a moment.
type bucket struct {
	ThrottleStatus
	at time.Time
}

// Deps are the client's collaborators.
type Deps struct {
	Tokens     TokenSource           // per-shop access tokens; nil: none
	Registerer prometheus.Registerer // nil: not registered
	Logger     *slog.Logger          // nil: discard
}

// New creates a client.
func New(cfg Config, deps Deps) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tokens, reg, log := deps.Tokens, deps.Registerer, deps.Logger
	if tokens == nil {
		tokens = Tokens{}
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg: cfg, tokens: tokens, log: log, m: newMetrics(reg),
		http: &http.Client{Timeout: cfg.Timeout,
			// Never follow a redirect: Go re-sends custom headers, the
			// access token among them, to whatever host it points at (and
			// keeps a 307/308's body). Shopify's Admin API does not redirect;
			// an answer that does is an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		buckets: map[string]bucket{}, lastCost: map[string]float64{},
	}, nil
}

// APIVersion is the pinned version (it also goes into reconciled records).
func (c *Client) APIVersion() string { return c.cfg.APIVersion }

// Sentinel errors; match with errors.Is.
var (
	// ErrNoToken: no access token is configured for the shop.
	ErrNoToken = errors.New("no Shopify access token for this shop: add it to -shopify.accessTokensFile (PURCHASESYNC_SHOPIFY_ACCESSTOKENSFILE) or -shopify.accessTokens (PURCHASESYNC_SHOPIFY_ACCESSTOKENS)")
	// ErrUnauthorized: Shopify rejected the token (uninstalled app, revoked
	// or expired token).
	ErrUnauthorized = errors.New("Shopify rejected the access token (app uninstalled, or the token revoked or expired): update it in the access tokens file or environment")
)

// IsThrottled reports whether a call failed because Shopify throttled it
// (HTTP 429, or GraphQL THROTTLED after the client's own waiting).
func IsThrottled(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusTooManyRequests || slices.Contains(e.Codes, "THROTTLED")
}

// IsUnreachable reports whether a call failed because Shopify could not be
// reached or failed itself (a network error, a timeout, HTTP 5xx), as
// opposed to an answer about the request.
func IsUnreachable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded)
}

// ThrottleStatus is extensions.cost.throttleStatus.
type ThrottleStatus struct {
	MaximumAvailable   float64 `json:"maximumAvailable"`
	CurrentlyAvailable float64 `json:"currentlyAvailable"`
	RestoreRate        float64 `json:"restoreRate"`
}

// Cost is extensions.cost.
type Cost struct {
	RequestedQueryCost float64        `json:"requestedQueryCost"`
	ActualQueryCost    *float64       `json:"actualQueryCost"`
	ThrottleStatus     ThrottleStatus `json:"throttleStatus"`
}

// GraphQLError is one entry of a response's top-level errors.
type GraphQLError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// Error is a failed call: Shopify answered, but not with data.
type Error struct {
	Shop      string
	Operation string
	Status    int      // HTTP status
	Codes     []string // extensions.code of GraphQL errors
	Messages  []string
	err       error // sentinel, if any
}

func (e *Error) Error() string {
	msg := strings.Join(e.Messages, "; ")
	if e.err != nil {
		msg = e.err.Error() + " (" + msg + ")"
	}
	return fmt.Sprintf("shopify %s for %s: HTTP %d: %s", e.Operation, e.Shop, e.Status, msg)
}

func (e *Error) Unwrap() error { return e.err }

// UserError is one entry of a mutation's userErrors.
type UserError struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
}

// UserErrors are a mutation's userErrors: Shopify refused the input.
type UserErrors struct {
	Shop      string
	Operation string
	Errors    []UserError
}

func (u *UserErrors) Error() string {
	parts := make([]string, len(u.Errors))
	for i, e := range u.Errors {
		if len(e.Field) > 0 {
			parts[i] = strings.Join(e.Field, ".") + ": " + e.Message
		} else {
			parts[i] = e.Message
		}
	}
	return fmt.Sprintf("shopify %s for %s refused: %s", u.Operation, u.Shop, strings.Join(parts, "; "))
}

// contains reports whether any message contains s (case-insensitive).
func (u *UserErrors) contains(s string) bool {
	for _, e := range u.Errors {
		if strings.Contains(strings.ToLower(e.Message), s) {
			return true
		}
	}
	return false
}

type request struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables,omitempty"`
}

type response struct {
	Data       json.RawMessage `json:"data"`
	Errors     json.RawMessage `json:"errors"`
	Extensions struct {
		Cost *Cost `json:"cost"`
	} `json:"extensions"`
}

// Do runs one GraphQL operation against shop and decodes data into out.
// op names the operation in metrics, logs and errors.
func (c *Client) Do(ctx context.Context, shop, op, query string, vars map[string]any, out any) error {
	token, ok := c.tokens.Token(shop)
	if !ok {
		return fmt.Errorf("shopify %s for %s: %w", op, shop, ErrNoToken)
	}
	body, err := json.Marshal(request{Query: query, Variables: vars})
	if err != nil {
		return fmt.Errorf("cannot encode shopify %s: %w", op, err)
	}
	url := strings.NewReplacer("{shop}", shop, "{version}", c.cfg.APIVersion).Replace(c.cfg.URL)
	var throttled time.Duration
	for attempt := 1; ; {
		if err := c.waitForBudget(ctx, shop, op, &throttled); err != nil {
			return err
		}
		start := time.Now()
		res, status, retryAfter, err := c.post(ctx, url, token, body)
		c.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return fmt.Errorf("shopify %s for %s: %w", op, shop, ctx.Err())
		}
		v := c.judge(shop, op, res, status, retryAfter, err)
		var wait time.Duration
		switch v.kind {
		case answered:
			c.m.requests.WithLabelValues(op, "ok").Inc()
			if out == nil || len(res.Data) == 0 {
				return nil
			}
			if err := json.Unmarshal(res.Data, out); err != nil {
				return fmt.Errorf("cannot decode shopify %s for %s: %w", op, shop, err)
			}
			return nil
		case refused:
			c.m.requests.WithLabelValues(op, "error").Inc()
			return v.err
		case throttledNow:
			// Throttling is bounded by MaxThrottleWait, not by attempts.
			c.m.requests.WithLabelValues(op, "throttled").Inc()
			if throttled+v.wait > c.cfg.MaxThrottleWait {
				return &Error{Shop: shop, Operation: op, Status: status, Codes: []string{"THROTTLED"}, Messages: []string{fmt.Sprintf("still throttled after waiting %s", throttled.Round(time.Millisecond))}}
			}
			throttled += v.wait
			c.m.throttleWait.Add(v.wait.Seconds())
			c.log.Debug("shopify throttled", "shop_domain", shop, "op", op, "wait", v.wait.String())
			wait = v.wait
		case failed:
			if attempt >= c.cfg.MaxAttempts {
				c.m.requests.WithLabelValues(op, "error").Inc()
				return fmt.Errorf("giving up after %d attempts: %w", attempt, v.err)
			}
			c.m.requests.WithLabelValues(op, "retry").Inc()
			if wait = v.wait; wait <= 0 {
				wait = retry.Delay(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff)
			}
			c.log.Warn("shopify call failed, retrying", "shop_domain", shop, "op", op, "attempt", attempt, "wait", wait.String(), "err", v.err)
			attempt++
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("shopify %s for %s: %w", op, shop, err)
		}
	}
}

// verdictKind is what Do does after one attempt.
type verdictKind int

const (
	answered     verdictKind = iota // decode the data and return
	refused                         // return the error: trying again cannot help
	throttledNow                    // wait for the bucket to refill, then try again
	failed                          // try again after a backoff, up to MaxAttempts
)

// verdict is one attempt's classification; wait is the server's
// Retry-After (failed) or the refill time (throttledNow).
type verdict struct {
	kind verdictKind
	err  error
	wait time.Duration
}

// judge classifies one attempt's answer (Prometheus' RecoverableError
// habit: Do's loop only acts on the verdict). It records the query cost of
// every answer that has one.
func (c *Client) judge(shop, op string, res *response, status int, retryAfter time.Duration, err error) verdict {
	switch {
	case err != nil: // network
		return verdict{kind: failed, err: fmt.Errorf("cannot reach Shopify for %s %s: %w", op, shop, err)}
	case status == http.StatusTooManyRequests || status >= 500:
		return verdict{kind: failed, err: &Error{Shop: shop, Operation: op, Status: status, Messages: []string{http.StatusText(status)}}, wait: retryAfter}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return verdict{kind: refused, err: &Error{Shop: shop, Operation: op, Status: status, Messages: errorMessages(res), err: ErrUnauthorized}}
	case status != http.StatusOK:
		return verdict{kind: refused, err: &Error{Shop: shop, Operation: op, Status: status, Messages: errorMessages(res)}}
	}
	cost := res.Extensions.Cost
	c.observeCost(shop, op, cost)
	gerrs := graphQLErrors(res)
	switch {
	case len(gerrs) == 0:
		return verdict{kind: answered}
	case hasCode(gerrs, "THROTTLED"):
		return verdict{kind: throttledNow, wait: refillWait(cost, c.cfg.MinBackoff)}
	case hasCode(gerrs, "INTERNAL_SERVER_ERROR"):
		return verdict{kind: failed, err: gqlError(shop, op, status, gerrs)}
	}
	return verdict{kind: refused, err: gqlError(shop, op, status, gerrs)}
}

// post sends one request. The token goes only into the header.
func (c *Client) post(ctx context.Context, url, token string, body []byte) (*response, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("cannot build request (check -shopify.adminURL): %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Shopify-Access-Token", token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, 0, 0, err
	}
	var retryAfter time.Duration
	if s := resp.Header.Get("Retry-After"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
			retryAfter = time.Duration(f * float64(time.Second))
		}
	}
	res := &response{}
	if err := json.Unmarshal(raw, res); err != nil {
		if resp.StatusCode == http.StatusOK {
			return nil, 0, 0, fmt.Errorf("undecodable answer: %w", err)
		}
		// Gateways answer 5xx with HTML: keep a short excerpt for the error.
		msg, _ := json.Marshal(strings.TrimSpace(string(raw[:min(len(raw), 200)])))
		res.Errors = msg
	}
	return res, resp.StatusCode, retryAfter, nil
}

// errorMessages reads "errors", which Shopify sends as a string on 401/404
// ("[API] Invalid API key or access token ...") and as a list otherwise.
func errorMessages(res *response) []string {
	if res == nil || len(res.Errors) == 0 {
		return nil
	}
	var s string
	if json.Unmarshal(res.Errors, &s) == nil {
		return []string{s}
	}
	var out []string
	for _, e := range graphQLErrors(res) {
		out = append(out, e.Message)
	}
	return out
}

func graphQLErrors(res *response) []GraphQLError {
	if res == nil || len(res.Errors) == 0 || string(res.Errors) == "null" {
		return nil
	}
	var list []GraphQLError
	if json.Unmarshal(res.Errors, &list) == nil {
		return list
	}
	return []GraphQLError{{Message: string(res.Errors)}}
}

func hasCode(errs []GraphQLError, code string) bool {
	for _, e := range errs {
		if e.Extensions.Code == code {
			return true
		}
	}
	return false
}

func gqlError(shop, op string, status int, errs []GraphQLError) *Error {
	e := &Error{Shop: shop, Operation: op, Status: status}
	for _, g := range errs {
		e.Messages = append(e.Messages, g.Message)
		if g.Extensions.Code != "" {
			e.Codes = append(e.Codes, g.Extensions.Code)
		}
	}
	if hasCode(errs, "ACCESS_DENIED") {
		e.Messages = append(e.Messages, "the app lacks a permission (access scope) for this; the merchant must grant it")
	}
	return e
}

// refillWait is how long the bucket needs to hold the requested cost again.
func refillWait(cost *Cost, floor time.Duration) time.Duration {
	if cost == nil || cost.ThrottleStatus.RestoreRate <= 0 {
		return floor
	}
	missing := cost.RequestedQueryCost - cost.ThrottleStatus.CurrentlyAvailable
	w := time.Duration(missing / cost.ThrottleStatus.RestoreRate * float64(time.Second))
	// A little extra so that the retry does not arrive a hair too early.
	w += w/10 + 10*time.Millisecond
	return max(w, 10*time.Millisecond)
}

func (c *Client) observeCost(shop, op string, cost *Cost) {
	if cost == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buckets[shop] = bucket{ThrottleStatus: cost.ThrottleStatus, at: time.Now()}
	if cost.RequestedQueryCost > 0 {
		c.lastCost[op] = cost.RequestedQueryCost
	}
}

// waitForBudget sleeps when the shop's bucket, refilled at its restore rate
// since Shopify last reported it, cannot pay for op's last known cost: a
// throttled call costs a round trip and the wait anyway.
func (c *Client) waitForBudget(ctx context.Context, shop, op string, waited *time.Duration) error {
	c.mu.Lock()
	b, ok := c.buckets[shop]
	need := c.lastCost[op]
	c.mu.Unlock()
	if !ok || need <= 0 || b.RestoreRate <= 0 {
		return nil
	}
	avail := math.Min(b.MaximumAvailable, b.CurrentlyAvailable+b.RestoreRate*time.Since(b.at).Seconds())
	if avail >= need {
		return nil
	}
	w := time.Duration((need - avail) / b.RestoreRate * float64(time.Second))
	*waited += w
	c.m.throttleWait.Add(w.Seconds())
	if err := retry.Sleep(ctx, w); err != nil {
		return fmt.Errorf("shopify %s for %s: %w", op, shop, err)
	}
	return nil
}
