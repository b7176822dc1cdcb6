// Package shopify is the pure half of the webhook endpoint: it verifies
// Shopify's HMAC signature against every configured app secret and routes a
// verified webhook on its X-Shopify-Topic. Nothing here touches the network
// or Kafka, so all of it is table-tested and fuzzed directly; the fasthttp
// handler in package ingest is the thin transport around it.
package shopify
