package roles

import (
	"crypto/subtle"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// maxHeaderTimeout bounds reading a request's headers even when
// read_timeout is longer.
const maxHeaderTimeout = 30 * time.Second

// newServer builds an HTTP server with the connection limits of s: idle
// keep-alive connections are closed after idle_timeout, and a request's
// headers and body must arrive within read_timeout. Answers are never
// bounded, so a long stream is not cut.
func newServer(h http.Handler, s config.Server) *http.Server {
	rt := s.ReadTimeout.D()
	hdr := maxHeaderTimeout
	if rt > 0 && rt < hdr {
		hdr = rt
	}
	return &http.Server{
		Handler:           bodyDeadline(h, rt),
		ReadHeaderTimeout: hdr,
		IdleTimeout:       s.IdleTimeout.D(),
	}
}

// bodyDeadline gives a request's body d to arrive, so a client that
// trickles it is cut off. The deadline is lifted once the body has been
// read to its end, or when the answer is first flushed (a stream), because
// the server's background read of the connection shares it and an expired
// one would cancel a long stream. A body that timed out keeps the expired
// deadline, so the server cannot wait for the rest of it either.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(d)) != nil {
			next.ServeHTTP(w, r)
			return
		}
		var once sync.Once
		lift := func() { once.Do(func() { _ = rc.SetReadDeadline(time.Time{}) }) }
		r.Body = &liftingBody{ReadCloser: r.Body, lift: lift}
		next.ServeHTTP(&liftingWriter{ResponseWriter: w, lift: lift}, r)
	})
}

// liftingBody lifts the read deadline once the body ends.
type liftingBody struct {
	io.ReadCloser
	lift func()
}

func (b *liftingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.lift()
	}
	return n, err
}

// liftingWriter lifts the read deadline when the answer is flushed.
type liftingWriter struct {
	http.ResponseWriter
	lift func()
}

// FlushError is what http.ResponseController.Flush calls.
func (w *liftingWriter) FlushError() error {
	w.lift()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush serves callers that assert http.Flusher.
func (w *liftingWriter) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the rest (Hijack, deadlines).
func (w *liftingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// capListener refuses a client address more than max open connections: an
// accepted connection over the cap is closed at once.
type capListener struct {
	net.Listener
	max  int
	log  zerolog.Logger
	mu   sync.Mutex
	open map[string]int
}

func capConns(l net.Listener, max int, log zerolog.Logger) net.Listener {
	if max <= 0 {
		return l
	}
	return &capListener{Listener: l, max: max, log: log, open: map[string]int{}}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l.mu.Lock()
		if l.open[host] >= l.max {
			l.mu.Unlock()
			l.log.Warn().Str("client", host).Int("max_conns_per_client", l.max).Msg("connection refused: too many from this client")
			_ = c.Close()
			continue
		}
		l.open[host]++
		l.mu.Unlock()
		return &cappedConn{Conn: c, done: func() {
			l.mu.Lock()
			if l.open[host]--; l.open[host] <= 0 {
				delete(l.open, host)
			}
			l.mu.Unlock()
		}}, nil
	}
}

// cappedConn gives its place back once, when closed.
type cappedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *cappedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}

// isLoopback reports whether a listen address accepts only local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secureListen returns the address a role listens on. Without credentials
// (hasAuth) a network address is narrowed to loopback, same port, and the
// log says why, unless allowUnauthenticated, which is warned about at every
// start.
func secureListen(log zerolog.Logger, what, key, addr string, hasAuth, allowUnauthenticated bool) string {
	if hasAuth || isLoopback(addr) {
		return addr
	}
	if allowUnauthenticated {
		log.Warn().Str("listen", addr).Msgf("%s serves a network address without authentication (allow_unauthenticated = true): anyone who can reach it can use it", what)
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	local := net.JoinHostPort("127.0.0.1", port)
	log.Warn().Str("configured", addr).Str("listen", local).
		Msgf("%s has no %s: listening on loopback only; set %s, or allow_unauthenticated = true to serve the network without one", what, key, key)
	return local
}

// bearerOnly requires Authorization: Bearer token on every request to h;
// an empty token leaves h open.
func bearerOnly(h http.Handler, token string) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need Authorization: Bearer <metrics_token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
