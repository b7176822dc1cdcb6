// Package appauth is the merchant's side of the Shopify app: the OAuth
// install (and re-authorization, to grant a new scope), the session-token
// exchange of embedded apps, the durable store of per-shop access tokens,
// and the processing of app/uninstalled.
//
// Routes (Handler.Mount, on the public app listener -app.addr, never on the
// ops listener):
//
//	GET  /auth/shopify?shop=S          remember a single-use state for S (10 min,
//	                                   bound to the browser by the cookie
//	                                   purchasesync_oauth_state: Secure, HttpOnly,
//	                                   SameSite=Lax) and 302 to
//	                                   https://S/admin/oauth/authorize?client_id&scope&redirect_uri&state
//	GET  /auth/shopify/callback        check shop, the query hmac (hex HMAC-SHA256
//	                                   with the app secret), timestamp freshness,
//	                                   state (issued here, same shop, unused,
//	                                   unexpired, equal to the cookie); exchange
//	                                   the code for an offline token, store it,
//	                                   subscribe APP_UNINSTALLED, 302 to
//	                                   /app?shop=S&host=H. Every refusal is a 4xx
//	                                   page and stores nothing.
//	POST /auth/shopify/token-exchange  Authorization: Bearer <session token> →
//	                                   ExchangeSessionToken → {"shop","scopes"}
//
// States live in the memory of the process that issued them: run one app
// listener, or route /auth/shopify* of one browser to one instance.
//
// The page (another package) authenticates its requests with
// Handler.VerifySessionToken, calls Handler.ExchangeSessionToken when the
// Store has no token for the session's shop, reads Store.Scopes, and links
// its "Update permissions" button to InstallURL(shop) at the top level.
//
// Token store (Store): the compacted topic shopify.tokens.v1, key the shop
// domain, value an envelope (keys.go): version byte, key id, nonce,
// AES-256-GCM ciphertext of {"access_token","scope","installed_at"}, with
// the header and the shop as additional data. Keys come from
// PURCHASESYNC_TOKEN_KEY (or _FILE): "id:base64,id2:base64", 32 bytes each;
// the first encrypts, all decrypt. Rotation: put a new key first and keep
// the old one; every install or token exchange from then on is written with
// the new key; once no record needs the old key (every shop re-installed,
// or the old records were rewritten), drop it. A record that does not
// decrypt is counted (token_undecryptable_records_total), logged once per
// key id, and leaves its shop without a token; the value is never logged.
// Every process follows the topic into memory (read to its end at start,
// then live), as processors/sites does; Put and Forget are synchronous
// produces (acks=all) and visible to the writer at once.
//
// Uninstall (Uninstaller): consumes shopify.app.v1 in its own group; for
// each app/uninstalled it forgets the token (tombstone) and turns Purchase
// Syncing off on the shop's site, clearing webhook_subscription_id, without
// calling Shopify (the token is revoked already). An uninstall older than
// the shop's stored install is skipped. A shop that installs again starts
// clean: a new token, syncing off until the merchant switches it on.
//
// Metrics (prefix purchasesync_appauth_): oauth_starts_total{outcome},
// oauth_callbacks_total{outcome}, token_exchanges_total{outcome},
// oauth_pending_states, tokens, token_records_total,
// token_undecryptable_records_total, tokens_ready,
// tokens_outages_total{dependency}, uninstalls_total{outcome},
// uninstall_ready, uninstall_outages_total{dependency}.
package appauth
