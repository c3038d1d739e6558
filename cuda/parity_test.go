package cuda

import (
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"testing"

	"helexa/node/engine"
)

// sharedDir finds ../shared beside the module root, or skips.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	s := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(s, "reference")); err != nil {
		t.Skip("../shared/reference is absent: parity needs the shared models and references")
	}
	return s
}

// TestOracleParity checks the oracle gpucheck compares the GPU with: the
// float64 reference forward pass (engine.Oracle) over the engine loader's weights must
// meet the project's tolerances on the shared references.
func TestOracleParity(t *testing.T) {
	shared := sharedDir(t)
	files := []string{"stories260K", "stories260K-F16"}
	if !testing.Short() && !raceEnabled {
		files = append(files, "synth-25m-Q4_K_M")
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			ref, err := engine.LoadReference(filepath.Join(shared, "reference", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			w, _, closeW, err := engine.LoadWeights(filepath.Join(shared, "models", ref.ModelFile))
			if err != nil {
				t.Fatal(err)
			}
			defer closeW()
			r, err := engine.NewOracle(w, engine.RunnerOptions{ContextLength: 64, Slots: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tol := ToleranceOf(w)
			res, err := Parity(RunnerForwardAll(r), w.H.NVocab, ref, tol)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s (%s): %d steps, mean |Δ| %.5f, max |Δ| %.4f, top-1 agree %.3f, %d misses above gap %.2f", name, WeightClass(w),
				res.Steps, res.MeanAbs, res.MaxAbs, res.Top1Agree, res.GapDisagree, res.Gap)
			if err := res.Check(tol); err != nil {
				t.Errorf("outside tolerance: %v", err)
			}
		})
	}
}

// TestParityDetectsWrongModel guards the check itself: a model that is
// not the reference's must fail it.
func TestParityDetectsWrongModel(t *testing.T) {
	shared := sharedDir(t)
	ref, err := engine.LoadReference(filepath.Join(shared, "reference", "stories260K.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, _, closeW, err := engine.LoadWeights(filepath.Join(shared, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeW()
	w.H.RopeStyle = engine.RopeNeoX // the wrong pairing
	r, err := engine.NewOracle(w, engine.RunnerOptions{ContextLength: 64, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	tol := engine.ToleranceFor("F32")
	res, err := Parity(RunnerForwardAll(r), w.H.NVocab, ref, tol)
	if err != nil {
		t.Fatal(err)
	}
	if res.Check(tol) == nil {
		t.Errorf("a wrong RoPE layout passed parity: %+v", res)
	}
}
