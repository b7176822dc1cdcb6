package shopifyfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"purchasesync/processors/control/shopifyfake/schemacheck"
)

// checker validates the GraphQL traffic against Shopify's published schema
// of the version in the request's path (see CheckSchemas).
type checker struct {
	mu         sync.Mutex
	dir        string // "" = off
	errs       []error
	unchecked  map[string]int  // version without a schema file → requests
	deprecated map[string]bool // "version: Type.field: reason" selected
}

// Start starts a fake for a test: closed at the end of the test, and, when
// Shopify's schemas are there (schemacheck.Dir: PURCHASESYNC_SHOPIFY_SCHEMA_DIR;
// required under PURCHASESYNC_FUNCTIONAL_TESTS=1), checking every GraphQL
// request and answer against the schema of the requested API version; a
// mismatch fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	if dir := schemacheck.Dir(t, ""); dir != "" {
		s.CheckSchemas(dir)
	}
	t.Cleanup(func() {
		s.Close()
		s.CheckSchema(t)
	})
	return s
}

// CheckSchemas turns schema validation on: dir holds admin_<version>.json.gz
// (the dist/data folder of @shopify/dev-mcp). Every GraphQL document and its
// variables are validated before they are served (an invalid one gets the
// errors-only answer Shopify gives, and is recorded), and every answer is
// validated against the document (a mismatch is recorded: the fake is not
// faithful). Requests for a version without a schema file are not checked.
func (s *Server) CheckSchemas(dir string) {
	s.chk.mu.Lock()
	defer s.chk.mu.Unlock()
	s.chk.dir = dir
}

// SchemaErrors returns the mismatches recorded so far.
func (s *Server) SchemaErrors() []error {
	s.chk.mu.Lock()
	defer s.chk.mu.Unlock()
	return append([]error(nil), s.chk.errs...)
}

// CheckSchema fails t with every recorded mismatch, and logs the versions
// that went unchecked for want of a schema and the deprecated fields
// selected (DeprecatedFields).
func (s *Server) CheckSchema(t testing.TB) {
	t.Helper()
	for _, err := range s.SchemaErrors() {
		t.Errorf("shopifyfake: %v", err)
	}
	s.chk.mu.Lock()
	defer s.chk.mu.Unlock()
	versions := make([]string, 0, len(s.chk.unchecked))
	for v := range s.chk.unchecked {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		t.Logf("shopifyfake: %d GraphQL requests for API version %s not checked: no schema %s", s.chk.unchecked[v], v, schemacheck.File(s.chk.dir, v))
	}
	for _, d := range s.deprecatedLocked() {
		t.Logf("shopifyfake: the client selects a deprecated field: %s", d)
	}
}

// DeprecatedFields lists the deprecated fields the checked documents
// selected, as "version: Type.field: reason".
func (s *Server) DeprecatedFields() []string {
	s.chk.mu.Lock()
	defer s.chk.mu.Unlock()
	return s.deprecatedLocked()
}

func (s *Server) deprecatedLocked() []string {
	out := make([]string, 0, len(s.chk.deprecated))
	for d := range s.chk.deprecated {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func (s *Server) record(err error) {
	s.chk.mu.Lock()
	defer s.chk.mu.Unlock()
	s.chk.errs = append(s.chk.errs, err)
}

// schemaFor returns the schema of version, nil when checks are off or no
// file exists for it.
func (s *Server) schemaFor(version string) (*ast.Schema, error) {
	s.chk.mu.Lock()
	dir := s.chk.dir
	s.chk.mu.Unlock()
	if dir == "" {
		return nil, nil
	}
	path := schemacheck.File(dir, version)
	if _, err := os.Stat(path); err != nil {
		s.chk.mu.Lock()
		if s.chk.unchecked == nil {
			s.chk.unchecked = map[string]int{}
		}
		s.chk.unchecked[version]++
		s.chk.mu.Unlock()
		return nil, nil
	}
	return schemacheck.Load(path)
}

// handle is the GraphQL entry point's check around serve.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		s.serve(w, r)
		return
	}
	schema, err := s.schemaFor(m[2])
	if err != nil {
		s.record(err)
	}
	if schema == nil {
		s.serve(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if json.Unmarshal(body, &req) != nil || req.Query == "" {
		s.serve(w, r) // the fake answers that itself
		return
	}
	if err := schemacheck.ValidateDocument(schema, req.Query, req.Variables); err != nil {
		s.record(fmt.Errorf("Shopify %s would reject this request: %w\n%s\nvariables: %s", m[2], err, req.Query, jsonText(req.Variables)))
		// Shopify answers an invalid document with HTTP 200, errors and no data.
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlErr{{Message: err.Error(), Extensions: map[string]any{"code": "invalidDocument"}}}})
		return
	}
	if deps, _ := schemacheck.Deprecated(schema, req.Query); len(deps) > 0 {
		s.chk.mu.Lock()
		if s.chk.deprecated == nil {
			s.chk.deprecated = map[string]bool{}
		}
		for _, d := range deps {
			s.chk.deprecated[m[2]+": "+d] = true
		}
		s.chk.mu.Unlock()
	}
	rec := httptest.NewRecorder()
	s.serve(rec, r)
	if rec.Code == http.StatusOK {
		if err := schemacheck.ValidateResponse(schema, req.Query, req.Variables, rec.Body.Bytes()); err != nil {
			s.record(fmt.Errorf("the fake answered what Shopify %s cannot: %w\n%s\nvariables: %s\nanswer: %s", m[2], err, req.Query, jsonText(req.Variables), rec.Body.Bytes()))
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// parseDocument parses a document without a schema (the fake needs no
// schema to run): syntax only.
func parseDocument(q string) (*ast.QueryDocument, *ast.OperationDefinition, error) {
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		return nil, nil, err
	}
	if len(doc.Operations) != 1 {
		return nil, nil, fmt.Errorf("An operation name is required")
	}
	return doc, doc.Operations[0], nil
}

// project keeps of data what the operation selects, under the selections'
// response keys (aliases), as a GraphQL server answers: the handlers build
// whole objects. Fragments are followed whatever their type condition (the
// fake's objects are concrete).
func project(doc *ast.QueryDocument, op *ast.OperationDefinition, vars map[string]any, data map[string]any) map[string]any {
	raw, err := json.Marshal(data)
	if err != nil {
		return data
	}
	var generic map[string]any
	if json.Unmarshal(raw, &generic) != nil {
		return data
	}
	out, _ := projectValue(doc, vars, []ast.SelectionSet{op.SelectionSet}, generic).(map[string]any)
	return out
}

func projectValue(doc *ast.QueryDocument, vars map[string]any, sets []ast.SelectionSet, v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = projectValue(doc, vars, sets, e)
		}
		return out
	case map[string]any:
		type sel struct {
			name string
			sets []ast.SelectionSet
		}
		var keys []string
		fields := map[string]*sel{}
		var visit func(ast.SelectionSet)
		visit = func(set ast.SelectionSet) {
			for _, s := range set {
				switch s := s.(type) {
				case *ast.Field:
					if skipped(s.Directives, vars) {
						continue
					}
					key := s.Alias
					if key == "" {
						key = s.Name
					}
					f := fields[key]
					if f == nil {
						f = &sel{name: s.Name}
						fields[key] = f
						keys = append(keys, key)
					}
					if len(s.SelectionSet) > 0 {
						f.sets = append(f.sets, s.SelectionSet)
					}
				case *ast.FragmentSpread:
					if d := doc.Fragments.ForName(s.Name); d != nil && !skipped(s.Directives, vars) {
						visit(d.SelectionSet)
					}
				case *ast.InlineFragment:
					if !skipped(s.Directives, vars) {
						visit(s.SelectionSet)
					}
				}
			}
		}
		for _, set := range sets {
			visit(set)
		}
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			f := fields[k]
			val, ok := v[f.name]
			if !ok {
				continue // not implemented by the fake: the schema check says so
			}
			if len(f.sets) > 0 {
				val = projectValue(doc, vars, f.sets, val)
			}
			out[k] = val
		}
		return out
	}
	return v
}

func skipped(ds ast.DirectiveList, vars map[string]any) bool {
	is := func(name string) bool {
		d := ds.ForName(name)
		if d == nil || d.Arguments.ForName("if") == nil {
			return name == "include"
		}
		b, _ := d.Arguments.ForName("if").Value.Value(vars)
		v, _ := b.(bool)
		return v
	}
	return is("skip") || !is("include")
}
