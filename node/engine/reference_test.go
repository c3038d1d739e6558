package engine

import (
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir returns the shared test data folder beside the repository,
// skipping the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(shared, "reference")); err != nil {
		t.Skipf("shared test data not found at %s (models and references live beside the repository)", shared)
	}
	return shared
}

// modelFor maps a reference file to the model it was made with: the
// reference's model_file, or the HF folder holding the same weights.
func modelFor(shared, refPath string, ref *Reference) string {
	base := strings.TrimSuffix(filepath.Base(refPath), ".json")
	if dir := filepath.Join(shared, "models", base); isDir(dir) {
		return dir
	}
	return filepath.Join(shared, "models", ref.ModelFile)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// TestReferences runs every reference teacher-forced and checks the
// project's tolerances. Under the race detector or -short only the first
// steps of the first case of each file run.
func TestReferences(t *testing.T) {
	shared := sharedDir(t)
	refs, _ := filepath.Glob(filepath.Join(shared, "reference", "*.json"))
	if len(refs) == 0 {
		t.Skip("no reference files")
	}
	for _, refPath := range refs {
		t.Run(filepath.Base(refPath), func(t *testing.T) {
			ref, err := LoadReference(refPath)
			if err != nil {
				t.Fatal(err)
			}
			path := modelFor(shared, refPath, ref)
			m, err := Load(path, Options{ContextLength: 256, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cases := ref.Cases
			if raceEnabled || testing.Short() {
				// One case, its first steps only: enough to catch a broken
				// forward pass without the full cost.
				c := cases[0]
				k := min(8, len(c.CompletionTokens))
				c.CompletionTokens, c.TopLogprobs = c.CompletionTokens[:k], c.TopLogprobs[:k]
				cases = []RefCase{c}
			}
			sum := EvalSummary{Gap: ToleranceFor(m.Info.Quant).Gap}
			for i, c := range cases {
				steps, err := m.EvalCase(c, 5)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				sum.Add(c, steps)
			}
			t.Logf("%s (%s): steps %d mean|Δ| %.5f max|Δ| %.5f top1 %.3f gap-disagree %d",
				filepath.Base(path), m.Info.Quant, sum.Steps, sum.MeanAbs, sum.MaxAbs, sum.Top1Agree, sum.GapDisagree)
			if err := sum.Check(ToleranceFor(m.Info.Quant)); err != nil {
				t.Error(err)
			}
		})
	}
}
