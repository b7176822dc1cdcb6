// Package adminapi is a small client of Shopify's Admin GraphQL API, with
// only what the control plane needs: the app's granted access scopes,
// webhook subscriptions (list, create, delete) and orders (cursor-paginated).
// An order is rendered in the REST shape of the orders/create webhook
// (RESTOrderJSON); every field of schemas.ComparedFields is selected and
// carried by its row's GraphQL and REST paths, so reconciled orders are
// compared on the same fields as delivered ones.
//
// The API version is pinned by configuration and is part of every URL. Each
// shop has its own access token, looked up per call from a TokenSource
// (flags, environment or a file, never Kafka); tokens appear in no log line
// and no error.
//
// Calls are retried with capped exponential backoff on network errors, 5xx
// and 429 (honouring Retry-After). Shopify's cost-based throttle is honoured
// twice: before a call, the client waits if the shop's bucket (as last
// reported in extensions.cost.throttleStatus) cannot pay for the operation's
// last known cost; after a THROTTLED answer, it waits exactly as long as the
// restore rate needs to refill the missing points. Mutations' userErrors
// become *UserErrors, whose message lists each field and message.
//
// Metrics (prefix given by the registerer): shopify_requests_total{operation,outcome},
// shopify_throttle_wait_seconds_total, shopify_request_duration_seconds{operation}.
package adminapi
