package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// StatusError is a handler error that carries its HTTP answer: handlers
// return it and writeError turns it into the response, so every refusal is
// written the same way.
type StatusError struct {
	Code int
	// Field names the offending field of a 400, e.g. "purchase.subtotal".
	Field string
	// RetryAfter, when set, is sent as Retry-After (503, 429).
	RetryAfter time.Duration
	Err        error
}

func (e *StatusError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d: %s: %v", e.Code, e.Field, e.Err)
	}
	return fmt.Sprintf("%d: %v", e.Code, e.Err)
}

func (e *StatusError) Unwrap() error { return e.Err }

// statusErrorf builds a StatusError with a formatted message.
func statusErrorf(code int, format string, args ...any) *StatusError {
	return &StatusError{Code: code, Err: fmt.Errorf(format, args...)}
}

// errorBody is the JSON of every refusal: {"error": "...", "field": "..."}.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeError writes err as the response. An error that is not a
// StatusError is a bug or an unexpected failure: it becomes a 500 and is
// logged, without its details reaching the client.
func writeError(ctx *fasthttp.RequestCtx, err error, log *slog.Logger) {
	var se *StatusError
	if !errors.As(err, &se) {
		log.Error("unexpected ingest error", "request_id", string(ctx.Response.Header.Peek("X-Request-Id")),
			"path", string(ctx.Path()), "err", err)
		se = &StatusError{Code: fasthttp.StatusInternalServerError, Err: errors.New("internal error")}
	}
	if se.RetryAfter > 0 {
		secs := int((se.RetryAfter + time.Second - 1) / time.Second)
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(secs))
	}
	msg := "error"
	if se.Err != nil {
		msg = se.Err.Error()
	}
	b, _ := json.Marshal(errorBody{Error: msg, Field: se.Field}) // cannot fail: two strings
	ctx.SetStatusCode(se.Code)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
