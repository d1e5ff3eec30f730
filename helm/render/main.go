// helm-render: renders a Helm chart the way `helm template` does, for CI on a machine
// without the helm binary. It is Helm's own template language (Go text/template with
// Masterminds sprig and Helm's include, tpl, required, toYaml, fromYaml, lookup) over the
// chart's values.yaml merged with each -f file, and Helm's built-in objects (.Values,
// .Release, .Chart, .Capabilities, .Template). Users render and install with helm itself;
// this is only as much of it as the fetchfleet chart uses, so CI can check every rendered
// object.
//
//	helm-render [-f values.yaml]... [-namespace NS] [-release NAME]
//	            [-api-versions monitoring.coreos.com/v1/ServiceMonitor,...] [-notes] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

type chartMeta struct {
	Name        string `yaml:"name"`
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
	KubeVersion string `yaml:"kubeVersion"`
}

// Chart mirrors the .Chart fields templates use (Helm capitalises them).
type Chart struct{ Name, Version, AppVersion, KubeVersion string }

type Release struct {
	Name, Namespace, Service string
	IsInstall, IsUpgrade     bool
	Revision                 int
}

type APIVersions []string

// Has is Helm's .Capabilities.APIVersions.Has: "group/version" or "group/version/Kind".
func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type KubeVersion struct{ Version, Major, Minor string }

type Capabilities struct {
	APIVersions APIVersions
	KubeVersion KubeVersion
}

type TemplateInfo struct{ Name, BasePath string }

func main() {
	var files valueFiles
	flag.Var(&files, "f", "a values file merged over the chart's values.yaml (repeatable)")
	namespace := flag.String("namespace", "default", "the release namespace")
	release := flag.String("release", "fetchfleet", "the release name")
	apis := flag.String("api-versions", "", "comma-separated extra API versions the cluster has")
	kube := flag.String("kube-version", "v1.29.0", "the cluster's Kubernetes version")
	notes := flag.Bool("notes", false, "render templates/NOTES.txt instead of the manifests")
	valuesOnly := flag.Bool("values-json", false, "print the merged values as JSON (for the schema check) instead")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-f values.yaml]... [flags] CHART_DIR")
		os.Exit(2)
	}
	if *valuesOnly {
		values, err := mergedValues(flag.Arg(0), files)
		if err == nil {
			var data []byte
			data, err = json.Marshal(values)
			os.Stdout.Write(append(data, '\n'))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	out, err := render(flag.Arg(0), files, *namespace, *release, *apis, *kube, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func render(dir string, files []string, namespace, releaseName, apis, kube string, notes bool) (string, error) {
	var meta chartMeta
	if err := readYAML(filepath.Join(dir, "Chart.yaml"), &meta); err != nil {
		return "", err
	}
	values, err := mergedValues(dir, files)
	if err != nil {
		return "", err
	}

	versions := APIVersions{"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
	for _, a := range strings.Split(apis, ",") {
		if a != "" {
			versions = append(versions, a)
		}
	}
	parts := strings.SplitN(strings.TrimPrefix(kube, "v"), ".", 3)
	if len(parts) < 2 {
		return "", fmt.Errorf("-kube-version %q: want vMAJOR.MINOR.PATCH", kube)
	}
	top := map[string]interface{}{
		"Values":       values,
		"Chart":        Chart{meta.Name, meta.Version, meta.AppVersion, meta.KubeVersion},
		"Release":      Release{releaseName, namespace, "Helm", true, false, 1},
		"Capabilities": Capabilities{versions, KubeVersion{kube, parts[0], parts[1]}},
	}

	// Every template file, partials included, in one set, as Helm parses them.
	var names []string
	root := filepath.Join(dir, "templates")
	err = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	t := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 100 {
			return "", fmt.Errorf("include %q: nested too deep", name)
		}
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		inner, err := t.Clone()
		if err != nil {
			return "", err
		}
		inner, err = inner.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = inner.Execute(&buf, data)
		return buf.String(), err
	}
	funcs["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, fmt.Errorf("%s", message)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, fmt.Errorf("%s", message)
		}
		return v, nil
	}
	funcs["toYaml"] = func(v interface{}) string {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	// `helm template` has no cluster to look up: an empty answer, as there.
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) map[string]interface{} {
		return map[string]interface{}{}
	}
	t.Funcs(funcs)
	for _, name := range names {
		text, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, name)
		if _, err := t.New(filepath.Join(meta.Name, rel)).Parse(string(text)); err != nil {
			return "", err
		}
	}

	var out strings.Builder
	for _, name := range names {
		rel, _ := filepath.Rel(dir, name)
		base := filepath.Base(name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		full := filepath.Join(meta.Name, rel)
		top["Template"] = TemplateInfo{full, filepath.Join(meta.Name, "templates")}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, full, top); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		for _, doc := range splitDocuments(text) {
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, doc)
		}
	}
	return out.String(), nil
}

// splitDocuments cuts a rendered file at its "---" lines and drops documents that hold
// only comments and blank lines (as Helm does).
func splitDocuments(text string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+text, "\n---") {
		doc = strings.TrimRight(strings.TrimPrefix(doc, "\n"), "\n ")
		empty := true
		for _, line := range strings.Split(doc, "\n") {
			l := strings.TrimSpace(line)
			if l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, doc)
		}
	}
	return docs
}

// mergedValues: the chart's values.yaml with each file merged over it, in order.
func mergedValues(dir string, files []string) (map[string]interface{}, error) {
	values := map[string]interface{}{}
	if err := readYAML(filepath.Join(dir, "values.yaml"), &values); err != nil {
		return nil, err
	}
	for _, f := range files {
		override := map[string]interface{}{}
		if err := readYAML(f, &override); err != nil {
			return nil, err
		}
		values = merge(values, override)
	}
	// Helm reads values through JSON (sigs.k8s.io/yaml): every number becomes a float64, so
	// 1000000 prints as 1e+06 unless a template converts it (int64). Do the same, so a
	// template that forgets fails here as it would under helm.
	data, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	values = map[string]interface{}{}
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, err
	}
	return values, nil
}

func readYAML(path string, into interface{}) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// merge overlays b on a: maps merge key by key, anything else is replaced (Helm's rule
// for -f files); a null in b deletes the key.
func merge(a, b map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, bIsMap := v.(map[string]interface{})
		am, aIsMap := out[k].(map[string]interface{})
		if bIsMap && aIsMap {
			out[k] = merge(am, bm)
		} else {
			out[k] = v
		}
	}
	return out
}
