//go:build linux

package cmd

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// commandOnly are the flags that pick an action rather than a setting: they
// are no configuration keys and are never passed on to workers.
var commandOnly = map[string]bool{"config": true, "s": true, "t": true, "version": true, "check": true, "check-pid": true}

// errConfigEmpty is the error for a -config file that sets no key.
var errConfigEmpty = errors.New("the file sets nothing: give at least one key, such as listen")

// applyConfigFile sets every flag named in the YAML mapping at path that the
// command line has not set: flags given on the command line win. Every key
// must name a flag; values must be scalars, written as on the command line.
// A file that sets nothing (empty, comments only, an empty mapping) is an
// error: it is a file truncated or not written yet, and taken as it is it
// would move the server to the default address.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return fmt.Errorf("parse config %s: %w", path, errConfigEmpty)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("parse config %s: line %d: want a mapping of flag names to values", path, root.Line)
	}
	if len(root.Content) == 0 {
		return fmt.Errorf("parse config %s: %w", path, errConfigEmpty)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if err := checkKey(fs, key, val, seen); err != nil {
			return fmt.Errorf("parse config %s: line %d: %w", path, key.Line, err)
		}
		if onCommandLine[key.Value] {
			continue
		}
		if err := fs.Set(key.Value, val.Value); err != nil {
			return fmt.Errorf("parse config %s: line %d: %s: %w", path, key.Line, key.Value, err)
		}
	}
	return nil
}

func checkKey(fs *flag.FlagSet, key, val *yaml.Node, seen map[string]bool) error {
	switch {
	case key.Kind != yaml.ScalarNode:
		return errors.New("keys must be flag names")
	case fs.Lookup(key.Value) == nil || commandOnly[key.Value]:
		return fmt.Errorf("unknown key %q: keys are the flags of rpcd -h, without the dash", key.Value)
	case seen[key.Value]:
		return fmt.Errorf("key %q given twice", key.Value)
	case val.Kind != yaml.ScalarNode || val.Tag == "!!null":
		return fmt.Errorf("%s: want a single value", key.Value)
	}
	seen[key.Value] = true
	return nil
}
