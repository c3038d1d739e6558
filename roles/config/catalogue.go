package config

import (
	"fmt"
	"os"
	"sort"
)

// Catalogue is models.toml: what the gateway knows about models beyond what
// the neurons report.
type Catalogue struct {
	Models  []CatalogueModel  `toml:"models"`
	Aliases map[string]string `toml:"aliases"`
}

// CatalogueModel is one [[models]] entry.
type CatalogueModel struct {
	ID string `toml:"id"`
	// MemMB is the fallback memory estimate when a neuron gives none.
	MemMB int `toml:"mem_mb"`
	// MinDevices is the fewest devices a node must offer.
	MinDevices int `toml:"min_devices"`
	// PinnedOn names nodes that keep this model loaded and are preferred.
	PinnedOn []string `toml:"pinned_on"`
	// Priority orders eviction under the priority strategy (default 100;
	// higher is kept longer).
	Priority *int `toml:"priority"`
	// IdleUnloadAfter overrides [eviction].idle_unload_after.
	IdleUnloadAfter Duration `toml:"idle_unload_after"`
	// ContextLength asks the neuron for this context at load.
	ContextLength int `toml:"context_length"`
	// MaxOutputTokens caps this model's completions (sent with the load;
	// 0: the neuron's own max_output_tokens). Requests asking for more end
	// with finish_reason "length" there.
	MaxOutputTokens int `toml:"max_output_tokens"`
}

// PriorityOr returns the entry's priority or DefaultPriority.
func (m CatalogueModel) PriorityOr() int {
	if m.Priority == nil {
		return DefaultPriority
	}
	return *m.Priority
}

// Find returns the entry for id.
func (c *Catalogue) Find(id string) (CatalogueModel, bool) {
	for _, m := range c.Models {
		if m.ID == id {
			return m, true
		}
	}
	return CatalogueModel{}, false
}

// Resolve maps an alias to its model id; other names come back unchanged.
func (c *Catalogue) Resolve(name string) string {
	if id, ok := c.Aliases[name]; ok {
		return id
	}
	return name
}

// LoadCatalogue reads models.toml. An empty path gives an empty catalogue.
func LoadCatalogue(path string) (Catalogue, error) {
	if path == "" {
		return Catalogue{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Catalogue{}, fmt.Errorf("reading catalogue: %w", err)
	}
	return ParseCatalogue(path, data)
}

// ParseCatalogue validates the text of a models.toml.
func ParseCatalogue(name string, data []byte) (Catalogue, error) {
	var c Catalogue
	if probs := decodeStrict(data, &c); len(probs) > 0 {
		return Catalogue{}, &Error{File: name, Problems: probs}
	}
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{Key: key, Line: lineOf(data, key), Msg: fmt.Sprintf(format, args...)})
	}
	ids := map[string]bool{}
	for i, m := range c.Models {
		if m.ID == "" {
			add("models.id", "models[%d]: id is required", i)
			continue
		}
		if ids[m.ID] {
			add("models.id", "models[%d]: duplicate id %q", i, m.ID)
		}
		ids[m.ID] = true
		if m.MemMB < 0 {
			add("models.mem_mb", "models[%d] (%s): must not be negative", i, m.ID)
		}
		if m.MinDevices < 0 {
			add("models.min_devices", "models[%d] (%s): must not be negative", i, m.ID)
		}
		if m.IdleUnloadAfter < 0 {
			add("models.idle_unload_after", "models[%d] (%s): must not be negative", i, m.ID)
		}
		if m.MaxOutputTokens < 0 {
			add("models.max_output_tokens", "models[%d] (%s): must not be negative", i, m.ID)
		}
		if m.ContextLength < 0 {
			add("models.context_length", "models[%d] (%s): must not be negative", i, m.ID)
		}
	}
	aliases := make([]string, 0, len(c.Aliases))
	for a := range c.Aliases {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		if a == "" || c.Aliases[a] == "" {
			add("aliases", "alias %q must map to a non-empty model id", a)
		}
		if ids[a] {
			add("aliases", "alias %q shadows a model id", a)
		}
		if _, chained := c.Aliases[c.Aliases[a]]; chained {
			add("aliases", "alias %q points at another alias %q", a, c.Aliases[a])
		}
	}
	if len(probs) > 0 {
		return Catalogue{}, &Error{File: name, Problems: probs}
	}
	return c, nil
}
