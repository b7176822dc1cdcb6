package registrar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"purchasesync/schemas"
	"purchasesync/schemas/retry"
)

// originRequest is the body of POST /api/v2/origins (research §5.3).
type originRequest struct {
	SiteSlug string     `json:"site_slug"`
	Type     string     `json:"type"`
	Data     originData `json:"data"`
}

type originData struct {
	OrderNumber     string       `json:"order_number"`
	Subtotal        json.Number  `json:"subtotal,omitempty"`
	CurrencyISOCode string       `json:"currency_iso_code,omitempty"`
	OrderDate       string       `json:"order_date,omitempty"`
	Email           string       `json:"email,omitempty"`
	CustomerID      string       `json:"customer_id,omitempty"`
	FirstName       string       `json:"first_name,omitempty"`
	LastName        string       `json:"last_name,omitempty"`
	IPAddress       string       `json:"ip_address,omitempty"`
	TrafficSource   string       `json:"traffic_source,omitempty"`
	CouponCode      string       `json:"coupon_code,omitempty"`
	ShippingZip     string       `json:"shipping_zip,omitempty"`
	ShippingAddress string       `json:"shipping_address,omitempty"`
	Items           []originItem `json:"items,omitempty"`
}

type originItem struct {
	ProductID string      `json:"product_id"`
	Price     json.Number `json:"price,omitempty"`
	Quantity  int64       `json:"quantity"`
}

// money renders an amount as a JSON number without a float in between; an
// amount that is not a decimal is left out rather than sent malformed.
func money(s string) json.Number {
	c, err := schemas.CanonicalDecimal(s)
	if err != nil {
		return ""
	}
	return json.Number(c)
}

// newOriginRequest maps a registered purchase to Talkable's origin fields.
func newOriginRequest(p *schemas.Purchase) originRequest {
	d := originData{
		OrderNumber: p.OrderNumber, Subtotal: money(p.Subtotal), CurrencyISOCode: strings.ToUpper(p.Currency),
		Email: p.Email, CustomerID: p.CustomerID, FirstName: p.FirstName, LastName: p.LastName,
		IPAddress: p.IPAddress, TrafficSource: p.TrafficSource, CouponCode: strings.Join(p.CouponCodes, ","),
		ShippingZip: p.ShippingZip, ShippingAddress: p.ShippingAddress,
	}
	// The order's own date when Shopify told us, else when it was registered.
	switch {
	case !p.OrderCreatedAt.IsZero():
		d.OrderDate = p.OrderCreatedAt.UTC().Format(time.RFC3339)
	case !p.RegisteredAt.IsZero():
		d.OrderDate = p.RegisteredAt.UTC().Format(time.RFC3339)
	}
	for _, it := range p.Items {
		d.Items = append(d.Items, originItem{ProductID: it.ProductID, Price: money(it.Price), Quantity: it.Quantity})
	}
	return originRequest{SiteSlug: p.Site, Type: "Purchase", Data: d}
}

// refundRequest is the body of POST /api/v2/origins/<order_number>/refund
// (research §5.3): a Purchase origin's slug is its order number.
type refundRequest struct {
	SiteSlug string     `json:"site_slug"`
	Data     refundData `json:"data"`
}

type refundData struct {
	RefundedAt string `json:"refunded_at,omitempty"`
}

// newRefundRequest marks the purchase refunded as of its latest refund.
func newRefundRequest(p *schemas.Purchase) refundRequest {
	d := refundData{}
	if p.RefundedAt != nil {
		d.RefundedAt = p.RefundedAt.UTC().Format(time.RFC3339)
	}
	return refundRequest{SiteSlug: p.Site, Data: d}
}

// envelope is Talkable's answer: {"ok": true, "result": …} or
// {"ok": false, "error_message": "…"}.
type envelope struct {
	OK           bool            `json:"ok"`
	Result       json.RawMessage `json:"result"`
	ErrorMessage string          `json:"error_message"`
}

// outcome of one request.
type outcome int

const (
	created      outcome = iota // registered now
	exists                      // the registry already has this purchase
	retryable                   // 429, 5xx, network: try again later
	unauthorized                // 401/403: wrong key, hold until fixed
	rejected                    // other 4xx: the registry refuses it
)

var outcomeNames = map[outcome]string{created: "created", exists: "exists", retryable: "retryable",
	unauthorized: "auth_error", rejected: "rejected"}

// result of one request.
type result struct {
	outcome    outcome
	label      string        // metric label
	retryAfter time.Duration // from Retry-After, 0 if none
	err        error
}

// post sends one request (an origin, or a refund) and classifies the answer.
func (r *Registrar) post(ctx context.Context, url string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{outcome: rejected, label: "rejected", err: fmt.Errorf("cannot build request: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := r.http.Do(req)
	r.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		return result{outcome: retryable, label: "network_error", err: fmt.Errorf("cannot reach the purchase registry: %w", err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env envelope
	_ = json.Unmarshal(raw, &env)
	msg := env.ErrorMessage
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	ra, _ := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300 && env.OK:
		return result{outcome: created, label: "created"}
	case code >= 200 && code < 300:
		return result{outcome: rejected, label: "rejected", err: fmt.Errorf("registry answered %d without ok: %s", code, msg)}
	case code == http.StatusConflict, code == http.StatusUnprocessableEntity && mentionsExisting(msg):
		return result{outcome: exists, label: "exists"}
	case code == http.StatusTooManyRequests:
		return result{outcome: retryable, label: "throttled", retryAfter: ra, err: errors.New("registry throttled the request (429)")}
	case code >= 500:
		return result{outcome: retryable, label: "server_error", retryAfter: ra, err: fmt.Errorf("registry answered %d: %s", code, msg)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return result{outcome: unauthorized, label: "auth_error", err: fmt.Errorf("registry refused the API key (%d): check -registrar.apiKey", code)}
	}
	return result{outcome: rejected, label: "rejected", err: fmt.Errorf("registry refused the purchase (%d): %s", code, msg)}
}

// mentionsExisting recognises "this order number is already registered":
// Talkable does not document the exact answer, so match its wording loosely.
func mentionsExisting(msg string) bool {
	m := strings.ToLower(msg)
	for _, no := range []string{"not exist", "doesn't exist", "not found", "no such"} {
		if strings.Contains(m, no) {
			return false // "Origin does not exist": the opposite
		}
	}
	return strings.Contains(m, "already") || strings.Contains(m, "exist") || strings.Contains(m, "duplicate")
}
