// Package page is the merchant's Shopify Integration page (Talkable →
// Settings → Shopify Integration): an embedded Shopify app page, served by
// the control plane on its public app listener, never on the ops listener.
//
// Shopify admin opens it in an iframe with a session token (a JWT signed
// with the app secret) as id_token; VerifySession checks it (signature,
// audience = our API key, shop, expiry) and nothing else logs a merchant
// in. The page is server-rendered HTML that works without JavaScript:
// its forms carry a page token (HMAC-signed shop and expiry, see
// pageToken) that is both their login and their CSRF token, so no cookie
// is needed inside Shopify's iframe.
//
// It shows the shop and site, the granted scopes, whether Purchase Syncing
// is on, the orders/create subscription's state, the last webhook received,
// today's purchases by registered_via, the latest discrepancies (masked by
// schemas.MaskValue) and the order-key diagnosis when there is one. Its
// switch runs the admin API's flow (processors/control.Service); without
// read_orders it shows the permission message and an Update permissions
// button that starts Shopify's re-authorization (/auth/shopify), after
// which the switch works. Enabling is refused while the order-key evidence
// contradicts the site's mode, as on the admin API.
//
// Metrics (prefix purchasesync_page_): views_total{outcome},
// switches_total{action,outcome}.
package page
