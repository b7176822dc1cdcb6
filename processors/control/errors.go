package control

import (
	"errors"
	"net/http"
)

// Sentinel errors; match with errors.Is.
var (
	// ErrUnknownSite: no such site in the registry.
	ErrUnknownSite = errors.New("unknown site")
	// ErrMissingScope: the shop has not granted read_orders.
	ErrMissingScope = errors.New("the shop has not granted the Talkable app permission to read orders (read_orders): ask the merchant to update the app's permissions (Talkable → Settings → Shopify Integration) and try again")
	// ErrNoCallbackURL: no public base URL is configured.
	ErrNoCallbackURL = errors.New("no public base URL for webhook subscriptions: set -public.baseURL or PURCHASESYNC_PUBLIC_BASEURL")
)

// StatusError carries the HTTP status the admin API answers with; the admin
// package reads it through its HTTPStatus method.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string   { return e.Err.Error() }
func (e *StatusError) Unwrap() error   { return e.Err }
func (e *StatusError) HTTPStatus() int { return e.Code }

func withStatus(code int, err error) error {
	if err == nil {
		return nil
	}
	return &StatusError{Code: code, Err: err}
}

// Statuses: the request was fine but the state of the shop or of our
// configuration prevents it (409); Shopify failed (502); Kafka failed (503).
const (
	statusPrecondition = http.StatusConflict
	statusShopify      = http.StatusBadGateway
	statusKafka        = http.StatusServiceUnavailable
)
