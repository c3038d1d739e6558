package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"helexa/roles/config"
)

// tomlKeys lists the dotted keys of t's toml tags ("gateway.listen"), with
// the element type's keys under a slice of tables.
func tomlKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[config.Duration]() {
			keys = append(keys, tomlKeys(prefix+name+".", ft)...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// helexa.example.toml says it lists every key: each key of config.Config
// appears in it, set or commented out, under its table.
func TestExampleConfigListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("helexa.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`^#?\s*\[\[?([a-z_]+)\]\]?\s*$`)
	key := regexp.MustCompile(`^#?\s*([a-z0-9_]+)\s*=`)
	listed := map[string]bool{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := table.FindStringSubmatch(line); m != nil {
			section = m[1]
		} else if m := key.FindStringSubmatch(line); m != nil {
			listed[section+"."+m[1]] = true
		}
	}
	keys := tomlKeys("", reflect.TypeFor[config.Config]())
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in config.Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !listed[k] {
			t.Errorf("helexa.example.toml does not list %s", k)
		}
	}
}
