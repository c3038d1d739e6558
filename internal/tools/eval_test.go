package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helexa/internal/testshared"
)

// TestToolsEval runs `helexa tools eval` on stories260K and checks its
// JSON Lines: one line per case with the reference's step count and five
// logprobs per step, then a summary within tolerance.
func TestToolsEval(t *testing.T) {
	shared := testshared.Dir(t)
	model := filepath.Join(shared, "models", "stories260K.gguf")
	ref := filepath.Join(shared, "reference", "stories260K.json")
	if _, err := os.Stat(ref); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	var out bytes.Buffer
	if err := runEval(context.Background(), &out, model, ref, 3, 2); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 5 cases and a summary", len(lines))
	}
	for i, l := range lines[:5] {
		var c struct {
			Case  int `json:"case"`
			Steps []struct {
				Top []struct {
					ID      int     `json:"id"`
					Logprob float64 `json:"logprob"`
				} `json:"top"`
				Ref []float64 `json:"ref"`
			} `json:"steps"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if c.Case != i || len(c.Steps) != 32 || len(c.Steps[0].Top) != 3 || len(c.Steps[0].Ref) != 5 {
			t.Fatalf("line %d: case %d, %d steps, top %d, ref %d", i, c.Case, len(c.Steps), len(c.Steps[0].Top), len(c.Steps[0].Ref))
		}
		if c.Steps[0].Top[0].Logprob < c.Steps[0].Top[1].Logprob {
			t.Errorf("line %d: top not sorted", i)
		}
	}
	var s struct {
		Summary struct {
			Steps     int     `json:"steps"`
			MeanAbs   float64 `json:"mean_abs"`
			MaxAbs    float64 `json:"max_abs"`
			Top1Agree float64 `json:"top1_agree"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[5]), &s); err != nil {
		t.Fatal(err)
	}
	if s.Summary.Steps != 160 || s.Summary.MeanAbs > 0.004 || s.Summary.MaxAbs > 0.03 || s.Summary.Top1Agree < 0.95 {
		t.Errorf("summary %+v", s.Summary)
	}

	// A reference that does not fit the model's vocabulary is an error.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"cases":[{"prompt_tokens":[1,99999],"completion_tokens":[2],"top_logprobs":[[{"id":2,"logprob":-1}]]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runEval(context.Background(), &out, model, bad, 5, 1); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("out-of-vocabulary reference: %v", err)
	}
}
