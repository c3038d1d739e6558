package tools

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v3"

	"helexa/node/gguf"
	"helexa/node/tokenizer"
)

func tokenizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokenize",
		Usage: "tokenize the texts of a vocabulary test file (.inp) and print their ids",
		Description: "Reads texts separated by the line __ggml_vocab_test__ (the .inp format) and prints one\n" +
			"line per text: its ids, each preceded by a space (the .out format). --model is a .gguf\n" +
			"file (vocabulary-only files included) or a Hugging Face folder with tokenizer.json.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "a .gguf file or a Hugging Face folder", Required: true},
			&cli.StringFlag{Name: "inp", Usage: "the texts, in .inp format (- for standard input)"},
			&cli.StringFlag{Name: "text", Usage: "one text to tokenize instead of --inp"},
			&cli.BoolFlag{Name: "add-special", Usage: "add BOS/EOS as the vocabulary asks"},
			&cli.BoolFlag{Name: "parse-special", Usage: "turn special-token text in the input into those tokens"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			var texts []string
			switch {
			case c.IsSet("text"):
				texts = []string{c.String("text")}
			case c.String("inp") != "":
				var content []byte
				var err error
				if c.String("inp") == "-" {
					content, err = io.ReadAll(os.Stdin)
				} else {
					content, err = os.ReadFile(c.String("inp"))
				}
				if err != nil {
					return fmt.Errorf("reading texts: %w", err)
				}
				texts = tokenizer.SplitVocabTests(string(content))
			default:
				return errors.New("tokenize: give --inp FILE or --text TEXT")
			}
			tok, err := loadTokenizer(c.String("model"))
			if err != nil {
				return err
			}
			return writeTokenized(os.Stdout, tok, texts, c.Bool("add-special"), c.Bool("parse-special"))
		},
	}
}

// loadTokenizer opens the vocabulary at path: a GGUF file, a Hugging Face
// folder, or the tokenizer.json inside one.
func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening model: %w", err)
	}
	if st.IsDir() {
		return tokenizer.FromHF(path)
	}
	if filepath.Base(path) == "tokenizer.json" {
		return tokenizer.FromHF(filepath.Dir(path))
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening model %s: %w", path, err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer of %s: %w", path, err)
	}
	return tok, nil
}

// writeTokenized prints one line per text: " id id ...".
func writeTokenized(w io.Writer, tok *tokenizer.Tokenizer, texts []string, addSpecial, parseSpecial bool) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for _, text := range texts {
		line = line[:0]
		for _, id := range tok.Encode(text, addSpecial, parseSpecial) {
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(id), 10)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("writing ids: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing ids: %w", err)
	}
	return nil
}
