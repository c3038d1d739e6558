package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/labstack/echo/v4"

	"helexa/roles/config"
)

// A request is authenticated, then checked against its key's limits, then
// routed: auth finds the key (a [[keys]] entry, a plain api_keys entry, an
// admin key, or no key at all when none is configured), serve asks the key
// whether the model is on its list and admit whether a limit is over, and
// finish charges the tokens the neuron reported.

// anonymous names the requests of a gateway that has no keys configured.
const anonymous = "anonymous"

// live is the part of the configuration a reload (SIGHUP) replaces: the
// catalogue and the keys. Requests read one snapshot through g.live().
type live struct {
	cat     config.Catalogue
	catByID map[string]config.CatalogueModel
	keys    map[[32]byte]*keyState // by the SHA-256 of the secret
	admin   map[[32]byte]bool
	open    bool        // no key configured: every request is anonymous
	list    []*keyState // every key, in configuration order (console)
}

func (g *Gateway) live() *live { return g.liveP.Load() }

// keyState is one key's limits and counters. Its state outlives a reload
// that keeps the key's name.
type keyState struct {
	name      string
	unlimited bool // api_keys, admin_keys and anonymous; never changes

	mu       sync.Mutex
	lim      config.Key
	rpmLevel float64 // token bucket of requests: holds rpm, refills rpm per minute
	tpmLevel float64 // token bucket of tokens: may go below zero when charged
	rpmAt    time.Time
	tpmAt    time.Time
	parallel int
	period   time.Time // start of the budget period spent counts
	spent    int64     // tokens in the budget period

	requests   *metrics.Counter
	promptTok  *metrics.Counter
	complTok   *metrics.Counter
	rejections sync.Map // reason → *metrics.Counter
	set        *metrics.Set
	rejected   atomic.Int64
}

// sha is the lookup hash of a secret.
func sha(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// buildLive builds the snapshot of cat and cfg's keys, reusing the state of
// keys that keep their name.
func (g *Gateway) buildLive(cfg config.Config, cat config.Catalogue) (*live, error) {
	l := &live{cat: cat, catByID: map[string]config.CatalogueModel{}, keys: map[[32]byte]*keyState{}, admin: map[[32]byte]bool{}}
	for _, m := range cat.Models {
		l.catByID[m.ID] = m
	}
	now := g.now()
	add := func(h [32]byte, k *keyState) error {
		if old, dup := l.keys[h]; dup {
			return fmt.Errorf("keys %s and %s have the same secret", old.name, k.name)
		}
		l.keys[h] = k
		return nil
	}
	for i, s := range cfg.Gateway.APIKeys {
		k := g.keyNamed(fmt.Sprintf("api_keys[%d]", i), config.Key{}, true, now)
		if err := add(sha(s), k); err != nil {
			return nil, err
		}
		l.list = append(l.list, k)
	}
	for _, kc := range cfg.Keys {
		var h [32]byte
		if kc.Key != "" {
			h = sha(kc.Key)
		} else {
			b, err := hex.DecodeString(strings.TrimSpace(kc.KeySHA256))
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("key %s: key_sha256 must be 64 hex digits", kc.Name)
			}
			copy(h[:], b)
		}
		if kc.Name == "" || strings.HasPrefix(kc.Name, "api_keys[") || kc.Name == "admin" || kc.Name == anonymous {
			return nil, fmt.Errorf("keys: %q is not a usable key name", kc.Name)
		}
		k := g.keyNamed(kc.Name, kc, false, now)
		if err := add(h, k); err != nil {
			return nil, err
		}
		l.list = append(l.list, k)
	}
	if len(cfg.Gateway.AdminKeys) > 0 {
		k := g.keyNamed("admin", config.Key{}, true, now)
		for _, s := range cfg.Gateway.AdminKeys {
			h := sha(s)
			if err := add(h, k); err != nil {
				return nil, err
			}
			l.admin[h] = true
		}
		l.list = append(l.list, k)
	}
	l.open = len(l.keys) == 0
	if l.open {
		l.list = append(l.list, g.keyNamed(anonymous, config.Key{}, true, now))
	}
	return l, nil
}

// keyNamed returns the state of the key called name, made on first use, with
// lim as its new limits.
func (g *Gateway) keyNamed(name string, lim config.Key, unlimited bool, now time.Time) *keyState {
	g.keysMu.Lock()
	defer g.keysMu.Unlock()
	k := g.keyStates[name]
	if k == nil {
		// unlimited follows from the name (api_keys[i], admin, anonymous
		// are never [[keys]] names), so it is set once, here.
		k = &keyState{name: name, unlimited: unlimited, set: g.met.set, rpmAt: now, tpmAt: now}
		k.requests = g.met.set.GetOrCreateCounter(fmt.Sprintf(`cortex_key_requests_total{key=%s}`, quoteLabel(name)))
		k.promptTok = g.met.set.GetOrCreateCounter(fmt.Sprintf(`cortex_key_tokens_total{key=%s,type="prompt"}`, quoteLabel(name)))
		k.complTok = g.met.set.GetOrCreateCounter(fmt.Sprintf(`cortex_key_tokens_total{key=%s,type="completion"}`, quoteLabel(name)))
		k.rpmLevel, k.tpmLevel = float64(lim.RPM), float64(lim.TPM)
		g.keyStates[name] = k
	}
	k.mu.Lock()
	old := k.lim
	k.lim = lim
	// A raised limit takes effect at once; a lowered one caps what is left.
	if lim.RPM != old.RPM {
		k.rpmLevel = math.Min(k.rpmLevel+float64(lim.RPM-old.RPM), float64(lim.RPM))
	}
	if lim.TPM != old.TPM {
		k.tpmLevel = math.Min(k.tpmLevel+float64(lim.TPM-old.TPM), float64(lim.TPM))
	}
	if lim.BudgetPeriod != old.BudgetPeriod || k.period.IsZero() {
		k.period = time.Time{} // counted again from the store at the next request
	}
	k.mu.Unlock()
	return k
}

// keyCtx is where auth leaves the request's key in the echo context.
const keyCtx = "helexa.key"

// authenticate finds the key a request offers: ok is false for a missing or
// unknown key when keys are configured.
func (l *live) authenticate(h http.Header) (k *keyState, admin, offered, ok bool) {
	bearer := ""
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = strings.TrimSpace(a[7:])
	}
	for _, s := range [2]string{h.Get("x-api-key"), bearer} {
		if s == "" {
			continue
		}
		offered = true
		hs := sha(s)
		if k := l.keys[hs]; k != nil {
			return k, l.admin[hs], true, true
		}
	}
	if l.open {
		return l.list[0], false, offered, true
	}
	return nil, false, offered, false
}

func keyOf(c echo.Context) *keyState {
	k, _ := c.Get(keyCtx).(*keyState)
	return k
}

// allows reports whether the key may use the model asked for as name
// (resolved to id): either must match an entry of its list.
func (k *keyState) allows(name, id string) bool {
	if k == nil || k.unlimited {
		return true
	}
	k.mu.Lock()
	models := k.lim.Models
	k.mu.Unlock()
	if len(models) == 0 {
		return true
	}
	for _, p := range models {
		if glob(p, name) || glob(p, id) {
			return true
		}
	}
	return false
}

// glob matches s against p, where * matches any run of characters (slashes
// included: model ids may hold them) and ? any one character.
func glob(p, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case px < len(p) && p[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// Reasons a request is refused before routing (metrics label values).
const (
	rejectRPM      = "rpm"
	rejectTPM      = "tpm"
	rejectParallel = "max_parallel"
	rejectBudget   = "budget"
	rejectModel    = "model_not_allowed"
)

// periodStart is the start of the calendar period (UTC) holding t.
func periodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch period {
	case config.PeriodMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	case config.PeriodWeek:
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		back := (int(day.Weekday()) + 6) % 7 // days since Monday
		return day.AddDate(0, 0, -back)
	default:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
}

// periodEnd is when the period starting at start ends.
func periodEnd(period string, start time.Time) time.Time {
	switch period {
	case config.PeriodMonth:
		return start.AddDate(0, 1, 0)
	case config.PeriodWeek:
		return start.AddDate(0, 0, 7)
	default:
		return start.AddDate(0, 0, 1)
	}
}

// spentSince reads how many tokens a key used since a time (the usage
// store, or nothing without one).
type spentSince func(key string, since time.Time) int64

// rollPeriod moves the budget period forward to the one holding now,
// reading what was spent in it when the key has no count yet. Called with
// k.mu held.
func (k *keyState) rollPeriod(now time.Time, spent spentSince) {
	if k.lim.BudgetTokens <= 0 {
		return
	}
	start := periodStart(k.lim.BudgetPeriod, now)
	if k.period.Equal(start) {
		return
	}
	if k.period.IsZero() && spent != nil {
		k.spent = spent(k.name, start)
	} else {
		k.spent = 0
	}
	k.period = start
}

// refill tops up both buckets for the time since they were last touched.
// Called with k.mu held.
func (k *keyState) refill(now time.Time) {
	if r := k.lim.RPM; r > 0 {
		k.rpmLevel = math.Min(float64(r), k.rpmLevel+now.Sub(k.rpmAt).Seconds()*float64(r)/60)
	}
	k.rpmAt = now
	if r := k.lim.TPM; r > 0 {
		k.tpmLevel = math.Min(float64(r), k.tpmLevel+now.Sub(k.tpmAt).Seconds()*float64(r)/60)
	}
	k.tpmAt = now
}

// admit checks the key's limits for one more request and takes its share:
// a request from the rpm bucket and a parallel slot. The error is the
// client's 429; reason labels it.
func (k *keyState) admit(now time.Time, spent spentSince) (reason string, aerr *apiError) {
	if k.unlimited {
		return "", nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	lim := k.lim
	if lim.BudgetTokens > 0 {
		k.rollPeriod(now, spent)
		if k.spent >= lim.BudgetTokens {
			end := periodEnd(lim.BudgetPeriod, k.period)
			return rejectBudget, &apiError{Status: http.StatusTooManyRequests, Code: "insufficient_quota", Type: "insufficient_quota", Reason: rejectBudget,
				RetryAfter: ceilSeconds(end.Sub(now)),
				Message: fmt.Sprintf("key %s has used its budget of %d tokens for this %s; it resets at %s (UTC)",
					k.name, lim.BudgetTokens, lim.BudgetPeriod, end.Format(time.RFC3339))}
		}
	}
	k.refill(now)
	if lim.RPM > 0 && k.rpmLevel < 1 {
		wait := time.Duration((1 - k.rpmLevel) * 60 / float64(lim.RPM) * float64(time.Second))
		return rejectRPM, rateLimited(k.name, "requests", fmt.Sprintf("%d requests per minute", lim.RPM), wait)
	}
	if lim.TPM > 0 && k.tpmLevel <= 0 {
		wait := time.Duration((-k.tpmLevel + 1) * 60 / float64(lim.TPM) * float64(time.Second))
		return rejectTPM, rateLimited(k.name, "tokens", fmt.Sprintf("%d tokens per minute", lim.TPM), wait)
	}
	if lim.MaxParallel > 0 && k.parallel >= lim.MaxParallel {
		return rejectParallel, rateLimited(k.name, "requests", fmt.Sprintf("%d requests at once", lim.MaxParallel), time.Second)
	}
	if lim.RPM > 0 {
		k.rpmLevel--
	}
	k.parallel++
	return "", nil
}

// done ends an admitted request: its parallel slot is freed and its tokens
// charged to the tpm bucket and the budget.
func (k *keyState) done(now time.Time, tokens int64, spent spentSince) {
	if k.unlimited {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.parallel--
	if tokens <= 0 {
		return
	}
	k.refill(now)
	if k.lim.TPM > 0 {
		k.tpmLevel -= float64(tokens)
	}
	if k.lim.BudgetTokens > 0 {
		k.rollPeriod(now, spent)
		k.spent += tokens
	}
}

// rateLimited is the 429 of a key over a rate limit; typ is OpenAI's error
// type for it ("requests" or "tokens").
func rateLimited(name, typ, limit string, wait time.Duration) *apiError {
	s := ceilSeconds(wait)
	return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded", Type: typ, Reason: "rate_limited", RetryAfter: s,
		Message: fmt.Sprintf("key %s is over its limit of %s; retry in %d s", name, limit, s)}
}

func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// reject counts a refusal of the key by reason.
func (k *keyState) reject(reason string) {
	k.rejected.Add(1)
	c, ok := k.rejections.Load(reason)
	if !ok {
		c, _ = k.rejections.LoadOrStore(reason, k.set.GetOrCreateCounter(fmt.Sprintf(`cortex_key_rejections_total{key=%s,reason=%s}`, quoteLabel(k.name), quoteLabel(reason))))
	}
	c.(*metrics.Counter).Inc()
}

// KeyView is one key as the console shows it: its name and limits, never
// its secret.
type KeyView struct {
	Name         string   `json:"name"`
	Unlimited    bool     `json:"unlimited"`
	Models       []string `json:"models,omitempty"`
	RPM          int      `json:"rpm,omitempty"`
	TPM          int      `json:"tpm,omitempty"`
	MaxParallel  int      `json:"max_parallel,omitempty"`
	Priority     int      `json:"priority,omitempty"`
	BudgetTokens int64    `json:"budget_tokens,omitempty"`
	BudgetPeriod string   `json:"budget_period,omitempty"`
	BudgetSpent  int64    `json:"budget_spent"`
	BudgetResets string   `json:"budget_resets,omitempty"`
	Parallel     int      `json:"in_flight"`
	RPMLeft      float64  `json:"rpm_left"`
	TPMLeft      float64  `json:"tpm_left"`
	Requests     uint64   `json:"requests"`
	PromptTokens uint64   `json:"prompt_tokens"`
	ComplTokens  uint64   `json:"completion_tokens"`
	Rejected     int64    `json:"rejected"`
}

func (k *keyState) view(now time.Time, spent spentSince) KeyView {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rollPeriod(now, spent)
	k.refill(now)
	v := KeyView{Name: k.name, Unlimited: k.unlimited, Models: k.lim.Models, RPM: k.lim.RPM, TPM: k.lim.TPM,
		MaxParallel: k.lim.MaxParallel, Priority: k.lim.Priority, BudgetTokens: k.lim.BudgetTokens, BudgetPeriod: k.lim.BudgetPeriod,
		BudgetSpent: k.spent, Parallel: k.parallel, RPMLeft: math.Floor(k.rpmLevel), TPMLeft: math.Floor(k.tpmLevel),
		Requests: k.requests.Get(), PromptTokens: k.promptTok.Get(), ComplTokens: k.complTok.Get(), Rejected: k.rejected.Load()}
	if k.lim.BudgetTokens > 0 {
		v.BudgetResets = periodEnd(k.lim.BudgetPeriod, k.period).Format(time.RFC3339)
	}
	return v
}

// priority is the key's priority (0 for none).
func (k *keyState) priority() int {
	if k == nil || k.unlimited {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lim.Priority
}

// spentFn reads a key's spending from the usage store.
func (g *Gateway) spentFn(key string, since time.Time) int64 { return g.store.spent(key, since) }

// checkModel answers 404, as for a model that does not exist, when the
// model is not on the key's list.
func (g *Gateway) checkModel(c *call, name string) *apiError {
	if c.key.allows(name, g.live().cat.Resolve(name)) {
		return nil
	}
	c.key.reject(rejectModel)
	e := modelNotFound(name)
	e.Reason = rejectModel
	return e
}

// admit applies the key's limits to c before it is routed.
func (g *Gateway) admit(c *call) *apiError {
	if c.key == nil {
		return nil
	}
	reason, aerr := c.key.admit(g.now(), g.spentFn)
	if aerr != nil {
		c.key.reject(reason)
		return aerr
	}
	c.admitted = true
	return nil
}

// account charges a finished call to its key (tokens, the tpm bucket, the
// budget) and records it in the usage store and the console's rings.
func (g *Gateway) account(c *call, model string, tps float64) {
	now := g.now()
	prompt, completion := int64(c.usage.Prompt), int64(c.usage.Completion)
	if !c.hasUsage {
		// No usage came (a stream cut short): what was streamed counts.
		prompt, completion = 0, int64(c.streamed)
	}
	failed := (c.code >= 400 && c.code != 499) || (c.reason != "" && c.reason != "client_gone")
	name := anonymous
	if k := c.key; k != nil {
		name = k.name
		k.requests.Inc()
		k.promptTok.Add(int(prompt))
		k.complTok.Add(int(completion))
		if c.admitted {
			k.done(now, prompt+completion, g.spentFn)
		}
	}
	cnt := usageCounts{Requests: 1, Prompt: prompt, Completion: completion}
	if failed {
		cnt.Errors = 1
	}
	g.store.record(name, model, now, cnt)
	if c.ttft > 0 || tps > 0 {
		g.rings.add(sample{at: now, model: model, ttft: c.ttft, tps: tps, tokens: int(completion)})
	}
	if failed {
		shown := model
		if c.model == "" && c.asked != "" {
			shown = c.asked
		}
		g.rings.addError(ErrorEntry{At: now.UTC(), Key: name, Model: shown, Node: c.node, API: c.api, Status: c.code, Reason: c.reason, Message: c.errMsg})
	}
}
