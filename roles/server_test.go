package roles

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// runGateway starts --role=gateway (no neurons) with the extra [gateway]
// lines and returns its addresses.
func runGateway(t *testing.T, extra string) Addrs {
	t.Helper()
	cfg, err := config.Parse("helexa.toml", []byte("[gateway]\nmetrics_listen = \"127.0.0.1:0\"\n"+extra+"\n[neuron]\ndemo_model = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Gateway.StateDir = t.TempDir() // each gateway its own usage store
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunConfig(ctx, Options{Role: "gateway", Log: zerolog.New(io.Discard), Ready: func(a Addrs) { ready <- a }}, cfg)
	}()
	var a Addrs
	select {
	case a = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("gateway did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("gateway did not start in 10s")
	}
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// closedWithin reports whether the server closes c within d, while the
// client keeps sending what it has to send (nothing when trickle is nil).
func closedWithin(c net.Conn, d time.Duration, trickle func() error) bool {
	deadline := time.Now().Add(d)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c) // returns when the server closes it
		close(closed)
	}()
	for time.Now().Before(deadline) {
		select {
		case <-closed:
			return true
		case <-time.After(50 * time.Millisecond):
		}
		if trickle != nil && trickle() != nil {
			return true // the server closed it under us
		}
	}
	return false
}

// A slow-loris client trickling its body, or its headers, loses the
// connection after read_timeout; one sitting idle on a keep-alive
// connection loses it after idle_timeout.
func TestSlowClientsCannotHoldConnections(t *testing.T) {
	a := runGateway(t, `read_timeout = "300ms"`+"\n"+`idle_timeout = "300ms"`)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", a.Gateway)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	body := dial()
	fmt.Fprintf(body, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	if !closedWithin(body, 5*time.Second, func() error { _, err := body.Write([]byte(" ")); return err }) {
		t.Fatal("a client trickling its body held the connection for 5s (read_timeout 300ms)")
	}
	hdr := dial()
	fmt.Fprintf(hdr, "GET /health HTTP/1.1\r\n")
	n := 0
	if !closedWithin(hdr, 5*time.Second, func() error { n++; _, err := fmt.Fprintf(hdr, "X-%d: y\r\n", n); return err }) {
		t.Fatal("a client trickling its headers held the connection for 5s")
	}
	idle := dial()
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	if !closedWithin(idle, 5*time.Second, nil) {
		t.Fatal("an idle keep-alive connection stayed open for 5s (idle_timeout 300ms)")
	}
}

// One client address cannot open more than max_conns_per_client.
func TestConnectionsPerClientCapped(t *testing.T) {
	a := runGateway(t, `max_conns_per_client = 2`)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", a.Gateway)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The third is closed at once; the first two serve.
	if !closedWithin(conns[2], 3*time.Second, nil) {
		t.Fatal("a third connection from one client was kept (max_conns_per_client 2)")
	}
	for i, c := range conns[:2] {
		fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	// A closed connection gives its place back.
	conns[0].Close()
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", a.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatalf("after a close: %v", err)
	} else {
		resp.Body.Close()
	}
}

// read_timeout bounds the request, never the answer: a stream that lasts
// well past it arrives whole, whether its handler read the body to the end
// or decoded it and left the last bytes.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	t.Run("read whole", func(t *testing.T) { testStreamOutlives(t, true) })
	t.Run("left unread", func(t *testing.T) { testStreamOutlives(t, false) })
}

func testStreamOutlives(t *testing.T, readAll bool) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readAll {
			_, _ = io.ReadAll(r.Body)
		} else {
			_, _ = r.Body.Read(make([]byte, 4))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 8 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			_ = rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(h, config.Server{ReadTimeout: config.Duration(200 * time.Millisecond), IdleTimeout: config.Duration(time.Second)})
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	resp, err := http.Post("http://"+l.Addr().String(), "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(got), "data: [DONE]\n\n") {
		t.Fatalf("stream cut: %v\n%s", err, got)
	}
}

// Without api_keys the gateway narrows a network address to loopback;
// allow_unauthenticated or a key keeps it. /metrics can require a token.
func TestSecureByDefault(t *testing.T) {
	host := func(a string) string { h, _, _ := net.SplitHostPort(a); return h }
	if a := runGateway(t, `listen = "0.0.0.0:0"`); host(a.Gateway) != "127.0.0.1" {
		t.Fatalf("no api_keys: listening on %s", a.Gateway)
	}
	if a := runGateway(t, `listen = "0.0.0.0:0"`+"\n"+`allow_unauthenticated = true`); isLoopback(a.Gateway) {
		t.Fatalf("allow_unauthenticated: listening on %s", a.Gateway)
	}
	if a := runGateway(t, `listen = "0.0.0.0:0"`+"\n"+`api_keys = ["k"]`); isLoopback(a.Gateway) {
		t.Fatalf("with api_keys: listening on %s", a.Gateway)
	}
	a := runGateway(t, `listen = "127.0.0.1:0"`+"\n"+`metrics_token = "m3t"`)
	get := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Metrics+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(""); c != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", c)
	}
	if c := get("Bearer nope"); c != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong token: %d", c)
	}
	if c := get("Bearer m3t"); c != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", c)
	}
}

func TestSecureListen(t *testing.T) {
	log := zerolog.New(io.Discard)
	f := func(addr string, auth, allow bool, want string) {
		t.Helper()
		if got := secureListen(log, "x", "token", addr, auth, allow); got != want {
			t.Errorf("secureListen(%q, auth %v, allow %v) = %q, want %q", addr, auth, allow, got, want)
		}
	}
	f("0.0.0.0:13131", false, false, "127.0.0.1:13131")
	f(":13131", false, false, "127.0.0.1:13131")
	f("[::]:13131", false, false, "127.0.0.1:13131")
	f("10.0.0.5:13131", false, false, "127.0.0.1:13131")
	f("0.0.0.0:13131", true, false, "0.0.0.0:13131")
	f("0.0.0.0:13131", false, true, "0.0.0.0:13131")
	f("127.0.0.1:13131", false, false, "127.0.0.1:13131")
	f("localhost:13131", false, false, "localhost:13131")
	f("[::1]:13131", false, false, "[::1]:13131")
}
