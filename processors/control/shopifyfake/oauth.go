package shopifyfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"purchasesync/schemas"
)

// This file is the fake's OAuth: Shopify's authorization code grant (the
// merchant approving at once), the token exchange of embedded apps, token
// revocation, session tokens and app/uninstalled deliveries. Like the rest
// of the fake it shares no code with the client: its HMACs and JWT checks
// are its own.

type authCode struct {
	shop    string
	scopes  []string
	expires time.Time
	used    bool
}

var oauthPathRE = regexp.MustCompile(`^/([a-z0-9][a-z0-9.-]*)/admin/oauth/(authorize|access_token)$`)

// adminAppRE is the app's page in Shopify admin, /{shop}/admin/apps/{api key}.
var adminAppRE = regexp.MustCompile(`^/([a-z0-9][a-z0-9.-]*)/admin/apps/([^/]+)$`)

// route sends OAuth paths to serveOAuth and everything else to the Admin
// GraphQL API (handle: checked against Shopify's schema when one is set, then serve).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if m := oauthPathRE.FindStringSubmatch(r.URL.Path); m != nil {
		s.serveOAuth(w, r, m[1], m[2])
		return
	}
	if m := adminAppRE.FindStringSubmatch(r.URL.Path); m != nil {
		s.adminApp(w, r, m[1], m[2])
		return
	}
	s.handle(w, r)
}

// SetAppURL sets the app's URL, where Shopify admin opens the embedded
// app (AdminAppURL).
func (s *Server) SetAppURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appURL = u
}

// AdminAppURL is the app's page in the shop's admin.
func (s *Server) AdminAppURL(domain string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.URL + "/" + domain + "/admin/apps/" + s.apiKey
}

// adminApp is Shopify admin opening the embedded app for a logged-in staff
// member: the app URL with shop, host (base64 of the admin's host) and a
// fresh session token as id_token. (Shopify renders it in an iframe; a
// redirect stands for that here.)
func (s *Server) adminApp(w http.ResponseWriter, r *http.Request, domain, apiKey string) {
	s.mu.Lock()
	key, appURL := s.apiKey, s.appURL
	s.mu.Unlock()
	if apiKey != key || appURL == "" {
		http.Error(w, "shopifyfake: no such app (SetApp, SetAppURL)", http.StatusNotFound)
		return
	}
	q := url.Values{"shop": {domain}, "host": {base64.RawURLEncoding.EncodeToString([]byte("admin.shopify.com/store/" + strings.TrimSuffix(domain, ".myshopify.com")))},
		"embedded": {"1"}, "id_token": {s.SessionToken(domain, time.Minute)}}
	http.Redirect(w, r, appURL+"?"+q.Encode(), http.StatusFound)
}

// OAuthURL is the template of the OAuth endpoints for the client
// ({shop}; /authorize and /access_token are appended).
func (s *Server) OAuthURL() string { return s.srv.URL + "/{shop}/admin/oauth" }

// SetApp sets the app's API key (client id) and secret: OAuth, session
// tokens and webhooks use them.
func (s *Server) SetApp(apiKey, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey, s.apiSecret = apiKey, secret
}

// Token is the shop's current access token ("" when none or revoked).
func (s *Server) Token(domain string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shop(domain).token
}

// Scopes are the scopes the shop granted.
func (s *Server) Scopes(domain string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.shop(domain).scopes...)
}

// Revoke revokes the shop's access token: Admin API calls with it answer
// 401, as Shopify's do after an uninstall.
func (s *Server) Revoke(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shop(domain).token = ""
}

// Uninstall is the merchant removing the app: the token is revoked and the
// app's webhook subscriptions on the shop are deleted (Shopify does both).
// Deliver the webhook with SendAppUninstalled.
func (s *Server) Uninstall(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shop(domain)
	sh.token, sh.scopes, sh.subs, sh.uninstalled = "", nil, nil, true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func oauthError(w http.ResponseWriter, code int, e, desc string) {
	writeJSON(w, code, map[string]string{"error": e, "error_description": desc})
}

func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request, domain, op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiKey == "" {
		http.Error(w, "shopifyfake: SetApp was not called", http.StatusInternalServerError)
		return
	}
	switch op {
	case "authorize":
		s.authorize(w, r, domain)
	case "access_token":
		s.accessToken(w, r, domain)
	}
}

// authorize is the merchant approving the grant screen: a one-time code
// for the requested scopes, and a redirect to redirect_uri signed as
// Shopify signs it.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, domain string) {
	if r.Method != http.MethodGet {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != s.apiKey:
		http.Error(w, "Oauth error invalid_request: Could not find Shopify API application with api_key "+q.Get("client_id"), http.StatusBadRequest)
		return
	case err != nil || !redirect.IsAbs() || redirect.Host == "":
		http.Error(w, "Oauth error invalid_request: The redirect_uri is missing or not whitelisted", http.StatusBadRequest)
		return
	}
	var scopes []string
	for _, sc := range strings.Split(q.Get("scope"), ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			scopes = append(scopes, sc)
		}
	}
	if _, ok := s.shops[domain]; !ok {
		s.shops[domain] = &shop{domain: domain, nextNumber: 1001, max: 1000, avail: 1000, rate: 50, at: time.Now()}
	}
	code := randHex(16)
	s.codes[code] = &authCode{shop: domain, scopes: scopes, expires: time.Now().Add(time.Minute)}
	out := url.Values{
		"code":      {code},
		"host":      {base64.RawURLEncoding.EncodeToString([]byte("admin.shopify.com/store/" + strings.TrimSuffix(domain, ".myshopify.com")))},
		"shop":      {domain},
		"timestamp": {strconv.FormatInt(time.Now().Unix(), 10)},
	}
	if st := q.Get("state"); st != "" {
		out.Set("state", st)
	}
	out.Set("hmac", s.signQuery(out))
	redirect.RawQuery = out.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// signQuery is Shopify's redirect HMAC: hex HMAC-SHA256 of the sorted
// k=v&... of every parameter but hmac.
func (s *Server) signQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "hmac" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + q.Get(k)
	}
	mac := hmac.New(sha256.New, []byte(s.apiSecret))
	mac.Write([]byte(strings.Join(parts, "&")))
	return hex.EncodeToString(mac.Sum(nil))
}

// accessToken is POST /admin/oauth/access_token (JSON or form body).
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request, domain string) {
	if r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	p := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is not valid JSON")
			return
		}
	} else {
		_ = r.ParseForm()
		for k := range r.Form {
			p[k] = r.Form.Get(k)
		}
	}
	if p["client_id"] != s.apiKey || subtle.ConstantTimeCompare([]byte(p["client_secret"]), []byte(s.apiSecret)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return
	}
	sh, ok := s.shops[domain]
	var scopes []string
	switch p["grant_type"] {
	case "", "authorization_code":
		c, found := s.codes[p["code"]]
		if !found || c.used || c.shop != domain || time.Now().After(c.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The authorization code was not found or was already used")
			return
		}
		c.used = true
		scopes = c.scopes
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		if p["subject_token_type"] != "urn:ietf:params:oauth:token-type:id_token" ||
			p["requested_token_type"] != "urn:shopify:params:oauth:token-type:offline-access-token" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "Unsupported subject_token_type or requested_token_type")
			return
		}
		// A shop that removed the app has no installation to exchange
		// for: it must go through the grant screen again.
		if shopOf, err := s.checkSessionToken(p["subject_token"]); err != nil || shopOf != domain || !ok || sh.uninstalled {
			oauthError(w, http.StatusBadRequest, "invalid_subject_token", "Invalid subject token")
			return
		}
		scopes = sh.scopes
		if len(scopes) == 0 {
			scopes = []string{"read_orders"} // the app's configured scopes (managed install)
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The grant type is not supported")
		return
	}
	sh = s.shops[domain]
	sh.token, sh.scopes, sh.uninstalled = "shpat_"+randHex(16), append([]string(nil), scopes...), false
	s.calls["access_token"]++
	writeJSON(w, http.StatusOK, map[string]string{"access_token": sh.token, "scope": strings.Join(scopes, ",")})
}

// SessionToken mints a session token for shop as App Bridge would (HS256
// with the app secret, aud the API key, valid for ttl from a few seconds
// ago).
func (s *Server) SessionToken(domain string, ttl time.Duration) string {
	s.mu.Lock()
	key, secret := s.apiKey, s.apiSecret
	s.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": "https://" + domain + "/admin", "dest": "https://" + domain, "aud": key, "sub": "42",
		"exp": now.Add(ttl).Unix(), "nbf": now.Add(-2 * time.Second).Unix(), "iat": now.Add(-2 * time.Second).Unix(),
		"jti": randHex(16), "sid": randHex(32),
	}
	hb, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkSessionToken is the fake's own check of a session token: HS256 with
// the app secret, aud the API key, unexpired; it returns dest's shop.
func (s *Server) checkSessionToken(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	mac := hmac.New(sha256.New, []byte(s.apiSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return "", fmt.Errorf("bad signature")
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h struct{ Alg string }
	var c struct {
		Aud  string
		Dest string
		Exp  int64
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" || json.Unmarshal(cb, &c) != nil {
		return "", fmt.Errorf("malformed")
	}
	if c.Aud != s.apiKey || time.Now().Unix() > c.Exp {
		return "", fmt.Errorf("wrong audience or expired")
	}
	return strings.TrimPrefix(c.Dest, "https://"), nil
}

// SendAppUninstalled delivers a signed app/uninstalled webhook for shop to
// url (the ingest's /webhooks/shopify), with Shopify's headers and the
// Shop resource as body; it returns the HTTP status.
func (s *Server) SendAppUninstalled(url, domain string) (int, error) {
	s.mu.Lock()
	secret := s.apiSecret
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	name := strings.TrimSuffix(domain, ".myshopify.com")
	body, _ := json.Marshal(map[string]any{
		"id": id, "name": name, "email": "owner@" + name + ".example", "domain": domain, "myshopify_domain": domain,
		"country": "US", "currency": "USD", "plan_name": "basic", "created_at": "2024-01-01T00:00:00-05:00",
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Topic", schemas.WebhookAppUninstalled)
	req.Header.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Shopify-Shop-Domain", domain)
	req.Header.Set("X-Shopify-API-Version", "2025-10")
	req.Header.Set("X-Shopify-Webhook-Id", randHex(16))
	req.Header.Set("X-Shopify-Event-Id", randHex(16))
	req.Header.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
