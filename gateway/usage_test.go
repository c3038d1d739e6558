package gateway

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

func TestUsageStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.record("alice", "m1", now, usageCounts{Requests: 1, Prompt: 10, Completion: 5})
	s.record("alice", "m2", now, usageCounts{Requests: 1, Prompt: 1, Completion: 2, Errors: 1})
	s.record("alice", "m1", now.Add(-3*time.Hour), usageCounts{Requests: 1, Prompt: 100})
	s.record("bob", "m1", now, usageCounts{Requests: 1, Prompt: 1000})
	if got := s.spent("alice", now.Add(-time.Hour)); got != 18 {
		t.Errorf("pending spent = %d, want 18", got)
	}
	if err := s.setPin("a", "m1", true); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, err = openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if got := s.spent("alice", now.Add(-time.Hour)); got != 18 {
		t.Errorf("spent after reopening = %d, want 18", got)
	}
	if got := s.spent("alice", now.Add(-4*time.Hour)); got != 118 {
		t.Errorf("spent over 4 hours = %d, want 118", got)
	}
	pts := s.series("alice", now.Add(-3*time.Hour), now)
	if len(pts) != 4 || pts[0].Prompt != 100 || pts[3].Requests != 2 || pts[3].Errors != 1 {
		t.Errorf("series: %+v", pts)
	}
	if !s.pinned("a", "m1") {
		t.Error("pin lost on reopening")
	}
}

// A file that is not a usage store stops the gateway with its path and is
// left as it was.
func TestUsageStoreRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, UsageFile)
	garbage := []byte(strings.Repeat("this is not a bbolt file\n", 1000))
	if err := os.WriteFile(p, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.StateDir = dir
	_, err := New(cfg, config.Catalogue{}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("New = %v, want an error naming %s", err, p)
	}
	after, _ := os.ReadFile(p)
	if string(after) != string(garbage) {
		t.Error("the unreadable store was changed")
	}
	// A valid bbolt file of another kind is refused too.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	s, err := openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	_ = s.close()
	raw, _ := os.ReadFile(p)
	raw[len(raw)/2] ^= 0xff
	for i := 0; i < 8192 && i < len(raw); i++ { // damage both meta pages
		raw[i] ^= 0x5a
	}
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openUsage(dir, 0, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("damaged store: %v", err)
	}
}

// Budgets survive a restart: the second gateway reads what the first spent.
func TestBudgetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := newFakeNeuron(t, "a", "m1*")
	opts := []gwOpt{withKeys(config.Key{Name: "dave", Key: "sk-d", BudgetTokens: 20, BudgetPeriod: "month"}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.StateDir = dir }}
	tg := startGateway(t, []*fakeNeuron{a}, opts...)
	for range 2 {
		if code, _, b := sendAs(t, tg, "sk-d", "openai", false); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
	}
	tg.close()
	tg = startGateway(t, []*fakeNeuron{a}, opts...)
	if code, _, b := sendAs(t, tg, "sk-d", "anthropic", false); code != 429 || !strings.Contains(b, "budget") {
		t.Fatalf("after a restart: %d %s, want the budget spent", code, b)
	}
}

// usageWriterEnv makes the test binary a usage writer (see
// TestUsageStoreSurvivesKill).
const usageWriterEnv = "HELEXA_TEST_USAGE_WRITER"

// TestUsageWriterProcess is the child of TestUsageStoreSurvivesKill: a
// gateway over a fake neuron whose usage store is in the given folder; it
// sends requests through the gateway one after another and prints each
// count once its answer came back (and so was recorded).
func TestUsageWriterProcess(t *testing.T) {
	dir := os.Getenv(usageWriterEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestUsageStoreSurvivesKill")
	}
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "k", Key: "sk-k"}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.StateDir = dir })
	w := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-k")...); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		_, _ = w.WriteString(strconv.Itoa(i) + "\n")
		_ = w.Flush()
	}
}

// A gateway killed with SIGKILL loses at most the usage of the requests
// that finished in the last flush interval (usageFlushEvery, 500 ms) plus
// one commit: every request answered more than a second before the kill is
// on disk.
func TestUsageStoreSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUsageWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), usageWriterEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		n  int
		at time.Time
	}
	var acks []ack
	sc := bufio.NewScanner(out)
	start := time.Now()
	for sc.Scan() {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			continue
		}
		acks = append(acks, ack{n, time.Now()})
		if time.Since(start) > 2500*time.Millisecond && n >= 200 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	if len(acks) == 0 {
		t.Fatal("the writer acknowledged nothing")
	}
	s, err := openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatalf("reopening after SIGKILL: %v", err)
	}
	defer s.close()
	var stored int64
	for _, c := range s.hours("k", time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour)) {
		stored += c.Requests
	}
	const bound = time.Second
	mustHave := 0
	for _, a := range acks {
		if killed.Sub(a.at) > bound {
			mustHave = a.n
		}
	}
	last := acks[len(acks)-1].n
	// The loss in time: from the answer of the last stored request to the
	// kill.
	window := killed.Sub(start)
	for _, a := range acks {
		if int64(a.n) == stored {
			window = killed.Sub(a.at)
		}
	}
	t.Logf("answered %d, stored %d: lost %d requests, those of the last %s before the kill; bound: every request answered more than %s before it (%d here)",
		last, stored, int64(last)-stored, window.Round(time.Millisecond), bound, mustHave)
	if stored < int64(mustHave) {
		t.Errorf("stored %d records, but %d were acknowledged more than %s before the kill", stored, mustHave, bound)
	}
	if stored > int64(last)+1 {
		t.Errorf("stored %d records, more than the %d written", stored, last)
	}
}

// A store another gateway holds is an error that says so, not a wait.
func TestUsageStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := openUsage(dir, 0, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v", err)
	}
}

// TestUsageRetention: with usage_retention set, hours older than it are
// removed (from the file, and from memory without a state_dir) soon after
// the store opens and hourly after; newer hours stay; with 0 nothing goes.
func TestUsageRetention(t *testing.T) {
	now := time.Now()
	old, recent := now.Add(-800*time.Hour), now.Add(-2*time.Hour)
	// tokens of key in the old hour and since the recent one
	count := func(s *usageStore, key string) (int64, int64) {
		return s.spent(key, old.Add(-time.Hour)) - s.spent(key, old.Add(time.Hour)), s.spent(key, recent.Add(-time.Hour))
	}
	fill := func(s *usageStore) {
		for _, key := range []string{"k0", "k1", "k2"} {
			s.record(key, "m1", old, usageCounts{Requests: 1, Prompt: 7})
			s.record(key, "m1", recent, usageCounts{Requests: 1, Prompt: 5})
		}
	}
	wait := func(s *usageStore, name string, wantOld int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			o, r := count(s, "k1")
			if o == wantOld && r == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: old %d, recent %d tokens; want %d, 5", name, o, r, wantOld)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(3 * usageFlushEvery) // a prune would have run by now
		if o, r := count(s, "k2"); o != wantOld || r != 5 {
			t.Fatalf("%s: old %d, recent %d tokens; want %d, 5", name, o, r, wantOld)
		}
	}

	// the file: written without retention, kept; reopened with it, pruned
	dir := t.TempDir()
	s, err := openUsage(dir, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	fill(s)
	wait(s, "file, no retention", 7)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openUsage(dir, 744*time.Hour, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	wait(s, "file, retention 744h", 0)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openUsage(dir, 0, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	wait(s, "file reopened", 0)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	// in memory
	for _, tc := range []struct {
		retention time.Duration
		wantOld   int64
	}{{0, 7}, {744 * time.Hour, 0}} {
		s, err := openUsage("", tc.retention, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		fill(s)
		wait(s, "memory, retention "+tc.retention.String(), tc.wantOld)
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
}
