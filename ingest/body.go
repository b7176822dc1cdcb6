package ingest

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// Request bodies are streamed (fasthttp's StreamRequestBody) and read here,
// by the route's handler, once the route and its limit are known. fasthttp
// without streaming allocates the whole announced Content-Length (up to the
// largest limit, rounded up to 1 MiB) as soon as the headers are in, on any
// path: 300 idle connections announcing 960 KiB held 300 MiB for nothing
// but 70 header bytes each. Here a body's buffer grows only with the bytes
// that arrived, and only on the two routes that take one.

// pooledBodyMax is the largest buffer kept for reuse: storefront events and
// most webhooks fit; a rare 900 KiB order is not worth pinning.
const pooledBodyMax = 64 << 10

var errNoBody = errors.New("this endpoint takes no request body")

// bodyBuffers recycles body buffers; the body is copied into its Kafka
// record (newRecord), so the buffer is free once the handler returns.
type bodyBuffers struct{ pool sync.Pool }

func (b *bodyBuffers) get() *[]byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return p
	}
	buf := make([]byte, 0, 4<<10)
	return &buf
}

func (b *bodyBuffers) put(p *[]byte) {
	if cap(*p) <= pooledBodyMax {
		*p = (*p)[:0]
		b.pool.Put(p)
	}
}

// announcesBody reports whether a request says a body follows
// (Content-Length > 0, or chunked).
func announcesBody(h *fasthttp.RequestHeader) bool {
	cl := h.ContentLength()
	return cl > 0 || cl == -1
}

// readBody reads the request body into *buf, at most limit bytes: 413 when
// the announced or the actual length is over it, 408 when the body does not
// arrive within the read timeout (the connection's deadline), 400 when the
// stream breaks. Refusals close the connection, so the server does not
// drain what is left of the body.
func readBody(ctx *fasthttp.RequestCtx, limit int, buf *[]byte) ([]byte, error) {
	tooLarge := func() error { return bodyTooLarge(ctx, limit) }
	if err := checkAnnounced(ctx, limit); err != nil {
		return nil, err
	}
	r := ctx.RequestBodyStream()
	if r == nil { // no stream: the body (if any) is already in memory
		if b := ctx.PostBody(); len(b) <= limit {
			return b, nil
		}
		return nil, tooLarge()
	}
	b := (*buf)[:0]
	if cl := ctx.Request.Header.ContentLength(); cl > cap(b) && cl <= 8<<10 {
		b = make([]byte, 0, cl) // small and announced: one allocation
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grows with what arrived, never with what was announced
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*buf = b
		if len(b) > limit {
			return nil, tooLarge()
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return b, nil
		default:
			ctx.SetConnectionClose()
			var timeout interface{ Timeout() bool }
			if errors.As(err, &timeout) && timeout.Timeout() {
				return nil, statusErrorf(fasthttp.StatusRequestTimeout, "request not received within the read timeout")
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, statusErrorf(fasthttp.StatusBadRequest, "request body ended early")
			}
			return nil, statusErrorf(fasthttp.StatusBadRequest, "cannot read the request body")
		}
	}
}

// checkAnnounced refuses a body announced over limit (413) before any of it
// is read; it costs nothing, so handlers call it before their other checks.
func checkAnnounced(ctx *fasthttp.RequestCtx, limit int) error {
	if ctx.Request.Header.ContentLength() > limit {
		return bodyTooLarge(ctx, limit)
	}
	return nil
}

func bodyTooLarge(ctx *fasthttp.RequestCtx, limit int) error {
	ctx.SetConnectionClose()
	return statusErrorf(fasthttp.StatusRequestEntityTooLarge, "body too large (at most %d bytes)", limit)
}

// canonicalTarget reports whether the request-target's path is exactly the
// path the router sees: no empty or dot segments, no percent-encoding, no
// backslashes. fasthttp normalizes "//v1/…", "/%76…" and "/x/../v1/…" to
// "/v1/…"; routing a spelling the client did not write is how a limit
// chosen on the raw target was once escaped, so such requests are refused
// (our clients, Shopify and the storefront JavaScript, never send them).
// The absolute-form (http://host/path), which HTTP/1.1 servers must accept,
// is compared on its path.
func canonicalTarget(ctx *fasthttp.RequestCtx) bool {
	raw := ctx.Request.Header.RequestURI()
	if i := bytes.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := bytes.Index(raw, []byte("://")); i > 0 && raw[0] != '/' {
		rest := raw[i+3:]
		j := bytes.IndexByte(rest, '/')
		if j < 0 {
			return false
		}
		raw = rest[j:]
	}
	return bytes.Equal(raw, ctx.Path())
}
