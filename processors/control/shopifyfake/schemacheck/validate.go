package schemacheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"
)

// ValidateDocument validates query against schema as a GraphQL server
// does before running it (gqlparser's validation rules), then its
// variables against the operation's variable definitions: gqlparser's
// coercion, plus stricter checks Shopify makes too (enum values exactly as
// declared, custom scalars of the right JSON kind and format, no unknown
// input fields, no undeclared variables). The document must hold one
// operation (the client sends no operationName).
func ValidateDocument(schema *ast.Schema, query string, variables map[string]any) error {
	_, _, _, err := document(schema, query, variables)
	return err
}

func document(schema *ast.Schema, query string, variables map[string]any) (*ast.QueryDocument, *ast.OperationDefinition, map[string]any, error) {
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("invalid document: %w", errs)
	}
	if len(doc.Operations) != 1 {
		return nil, nil, nil, fmt.Errorf("invalid document: %d operations, want exactly one", len(doc.Operations))
	}
	op := doc.Operations[0]
	// Variables as the server sees them: decoded from JSON.
	vars := map[string]any{}
	if len(variables) > 0 {
		raw, err := json.Marshal(variables)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("variables: %w", err)
		}
		if err := json.Unmarshal(raw, &vars); err != nil {
			return nil, nil, nil, fmt.Errorf("variables: %w", err)
		}
	}
	if _, err := validator.VariableValues(schema, op, vars); err != nil {
		return nil, nil, nil, fmt.Errorf("invalid variables: %w", err)
	}
	var problems []string
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if op.VariableDefinitions.ForName(name) == nil {
			problems = append(problems, fmt.Sprintf("$%s is not declared by the operation", name))
		}
	}
	for _, d := range op.VariableDefinitions {
		if v, ok := vars[d.Variable]; ok {
			problems = append(problems, checkInput(schema, d.Type, v, "$"+d.Variable)...)
		}
	}
	if len(problems) > 0 {
		return nil, nil, nil, fmt.Errorf("invalid variables: %s", strings.Join(problems, "; "))
	}
	return doc, op, vars, nil
}

// checkInput checks an input value (decoded from JSON) against its type.
func checkInput(schema *ast.Schema, t *ast.Type, v any, path string) []string {
	if v == nil {
		if t.NonNull {
			return []string{path + ": null for non-null " + t.String()}
		}
		return nil
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok { // input coercion: a single value stands for a list of one
			return checkInput(schema, t.Elem, v, path)
		}
		var out []string
		for i, e := range list {
			out = append(out, checkInput(schema, t.Elem, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	def := schema.Types[t.NamedType]
	switch def.Kind {
	case ast.Scalar:
		if msg := checkScalar(def.Name, v); msg != "" {
			return []string{path + ": " + msg}
		}
	case ast.Enum:
		if msg := checkEnum(def, v); msg != "" {
			return []string{path + ": " + msg}
		}
	case ast.InputObject:
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s is an input object, got %s", path, def.Name, kind(v))}
		}
		var out []string
		for _, k := range sortedKeys(m) {
			if def.Fields.ForName(k) == nil {
				out = append(out, fmt.Sprintf("%s: %s has no field %q", path, def.Name, k))
			}
		}
		for _, f := range def.Fields {
			fv, ok := m[f.Name]
			if !ok {
				if f.Type.NonNull && f.DefaultValue == nil {
					out = append(out, fmt.Sprintf("%s.%s: required (%s)", path, f.Name, f.Type))
				}
				continue
			}
			out = append(out, checkInput(schema, f.Type, fv, path+"."+f.Name)...)
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func checkEnum(def *ast.Definition, v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("enum %s travels as a string, got %s", def.Name, kind(v))
	}
	if def.EnumValues.ForName(s) == nil {
		return fmt.Sprintf("%q is not a value of enum %s", s, def.Name)
	}
	return ""
}

// Shopify's custom scalars all travel as JSON strings (shopify.dev's
// reference of each scalar), except JSON; format is checked where it is
// documented precisely.
var (
	decimalRE  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	unsignedRE = regexp.MustCompile(`^[0-9]+$`)
	bigIntRE   = regexp.MustCompile(`^-?[0-9]+$`)
	dateRE     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	formats    = map[string]func(string) bool{
		"DateTime": func(s string) bool {
			_, err := time.Parse(time.RFC3339, s)
			if err != nil && dateRE.MatchString(s) { // Shopify accepts a bare date as input
				return true
			}
			return err == nil
		},
		"Date":    dateRE.MatchString,
		"Decimal": decimalRE.MatchString,
		"Money":   decimalRE.MatchString,
		"UnsignedInt64": func(s string) bool {
			_, err := strconv.ParseUint(s, 10, 64)
			return unsignedRE.MatchString(s) && err == nil
		},
		"BigInt": bigIntRE.MatchString,
		"URL": func(s string) bool {
			u, err := url.Parse(s)
			return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
		},
	}
)

// checkScalar checks a scalar value's JSON kind and format; "" is fine.
func checkScalar(name string, v any) string {
	switch name {
	case "Int":
		n, ok := number(v)
		if !ok {
			return "Int travels as a JSON number, got " + kind(v)
		}
		i, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(n, 64)
			if ferr != nil || f != math.Trunc(f) {
				return fmt.Sprintf("Int is an integer, got %s", n)
			}
			i = int64(f)
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			return fmt.Sprintf("Int is 32-bit, got %s", n)
		}
	case "Float":
		if _, ok := number(v); !ok {
			return "Float travels as a JSON number, got " + kind(v)
		}
	case "Boolean":
		if _, ok := v.(bool); !ok {
			return "Boolean travels as a JSON boolean, got " + kind(v)
		}
	case "String", "ID":
		if _, ok := v.(string); !ok {
			return name + " travels as a JSON string, got " + kind(v)
		}
	case "JSON":
	default:
		s, ok := v.(string)
		if !ok {
			return name + " travels as a JSON string, got " + kind(v)
		}
		if f := formats[name]; f != nil && !f(s) {
			return fmt.Sprintf("%q is not a valid %s", s, name)
		}
	}
	return ""
}

func number(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return n.String(), true
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), true
	}
	return "", false
}

// ValidateResponse checks that response (the HTTP body of a GraphQL answer)
// is what a server with schema can answer to query and variables:
//   - only data, errors and extensions at the top level (Shopify sends
//     extensions.cost); errors, if any, a non-empty list of objects with a
//     message; no data (absent or null) only with errors;
//   - data follows the operation's selection set: every field it selects
//     (under its alias; fragments whose type condition applies; @skip and
//     @include honoured) is present and nothing else is; null only where
//     the field's type is nullable; lists where lists are;
//   - scalars of the right JSON kind (Int a 32-bit integer, ID and String
//     strings, Boolean a boolean, Shopify's custom scalars strings of their
//     format), enum values among the enum's, __typename a possible type.
func ValidateResponse(schema *ast.Schema, query string, variables map[string]any, response []byte) error {
	doc, op, vars, err := document(schema, query, variables)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(response))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return fmt.Errorf("response is not a JSON object: %w", err)
	}
	w := &walker{schema: schema, doc: doc, vars: vars}
	for _, k := range sortedKeys(top) {
		if k != "data" && k != "errors" && k != "extensions" {
			w.fail("", "unexpected top-level key %q", k)
		}
	}
	errs, hasErrs := top["errors"]
	if hasErrs {
		w.checkErrors(errs)
	}
	if ext, ok := top["extensions"]; ok {
		if _, isObj := ext.(map[string]any); !isObj {
			w.fail("extensions", "must be an object, got %s", kind(ext))
		}
	}
	data, hasData := top["data"]
	switch {
	case !hasData || data == nil:
		if !hasErrs {
			w.fail("data", "no data and no errors")
		}
	default:
		m, ok := data.(map[string]any)
		if !ok {
			w.fail("data", "must be an object, got %s", kind(data))
			break
		}
		root := schema.Query
		switch op.Operation {
		case ast.Mutation:
			root = schema.Mutation
		case ast.Subscription:
			root = schema.Subscription
		}
		w.object(root, []ast.SelectionSet{op.SelectionSet}, m, "data")
	}
	if len(w.problems) > 0 {
		return errors.New("response does not match the schema: " + strings.Join(w.problems, "; "))
	}
	return nil
}

type walker struct {
	schema   *ast.Schema
	doc      *ast.QueryDocument
	vars     map[string]any
	problems []string
}

func (w *walker) fail(path, format string, args ...any) {
	if len(w.problems) < 20 {
		msg := fmt.Sprintf(format, args...)
		if path != "" {
			msg = path + ": " + msg
		}
		w.problems = append(w.problems, msg)
	}
}

func (w *walker) checkErrors(v any) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		w.fail("errors", "must be a non-empty list, got %s", kind(v))
		return
	}
	for i, e := range list {
		p := fmt.Sprintf("errors[%d]", i)
		m, ok := e.(map[string]any)
		if !ok {
			w.fail(p, "must be an object, got %s", kind(e))
			continue
		}
		if _, ok := m["message"].(string); !ok {
			w.fail(p, "has no message string")
		}
		if x, ok := m["extensions"]; ok {
			if _, ok := x.(map[string]any); !ok {
				w.fail(p+".extensions", "must be an object")
			}
		}
		if x, ok := m["path"]; ok {
			if _, ok := x.([]any); !ok {
				w.fail(p+".path", "must be a list")
			}
		}
		if x, ok := m["locations"]; ok {
			if _, ok := x.([]any); !ok {
				w.fail(p+".locations", "must be a list")
			}
		}
	}
}

// field is one response key's merged selections.
type field struct {
	key    string
	fields []*ast.Field
}

// skipped evaluates @skip and @include.
func (w *walker) skipped(ds ast.DirectiveList) bool {
	cond := func(name string) (bool, bool) {
		d := ds.ForName(name)
		if d == nil {
			return false, false
		}
		a := d.Arguments.ForName("if")
		if a == nil {
			return false, false
		}
		v, err := a.Value.Value(w.vars)
		b, ok := v.(bool)
		return b, err == nil && ok
	}
	if b, ok := cond("skip"); ok && b {
		return true
	}
	if b, ok := cond("include"); ok && !b {
		return true
	}
	return false
}

func (w *walker) applies(obj *ast.Definition, cond string) bool {
	if cond == "" || cond == obj.Name {
		return true
	}
	def := w.schema.Types[cond]
	if def == nil || !def.IsAbstractType() {
		return false
	}
	for _, p := range w.schema.GetPossibleTypes(def) {
		if p.Name == obj.Name {
			return true
		}
	}
	return false
}

// collect is the spec's CollectFields for a concrete object type.
func (w *walker) collect(obj *ast.Definition, sets []ast.SelectionSet) []*field {
	var out []*field
	index := map[string]*field{}
	var visit func(ast.SelectionSet)
	visit = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if w.skipped(s.Directives) {
					continue
				}
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				f := index[key]
				if f == nil {
					f = &field{key: key}
					index[key] = f
					out = append(out, f)
				}
				f.fields = append(f.fields, s)
			case *ast.FragmentSpread:
				if w.skipped(s.Directives) {
					continue
				}
				def := w.doc.Fragments.ForName(s.Name)
				if def != nil && w.applies(obj, def.TypeCondition) {
					visit(def.SelectionSet)
				}
			case *ast.InlineFragment:
				if !w.skipped(s.Directives) && w.applies(obj, s.TypeCondition) {
					visit(s.SelectionSet)
				}
			}
		}
	}
	for _, set := range sets {
		visit(set)
	}
	return out
}

// object checks an object value of declared type t (possibly abstract).
func (w *walker) object(t *ast.Definition, sets []ast.SelectionSet, v map[string]any, path string) {
	if !t.IsAbstractType() {
		w.concrete(t, sets, v, path)
		return
	}
	possible := w.schema.GetPossibleTypes(t)
	if tn, ok := v["__typename"].(string); ok {
		for _, p := range possible {
			if p.Name == tn {
				w.concrete(p, sets, v, path)
				return
			}
		}
		w.fail(path, "__typename %q is not a possible type of %s", tn, t.Name)
		return
	}
	// Without __typename: the value must fit one of the possible types.
	var first []string
	for i, p := range possible {
		try := &walker{schema: w.schema, doc: w.doc, vars: w.vars}
		try.concrete(p, sets, v, path)
		if len(try.problems) == 0 {
			return
		}
		if i == 0 {
			first = try.problems
		}
	}
	w.fail(path, "fits no possible type of %s (as %s: %s)", t.Name, possible[0].Name, strings.Join(first, "; "))
}

func (w *walker) concrete(obj *ast.Definition, sets []ast.SelectionSet, v map[string]any, path string) {
	fields := w.collect(obj, sets)
	selected := map[string]bool{}
	for _, f := range fields {
		selected[f.key] = true
		p := path + "." + f.key
		val, ok := v[f.key]
		if !ok {
			w.fail(p, "selected but missing")
			continue
		}
		name := f.fields[0].Name
		if name == "__typename" {
			if s, ok := val.(string); !ok || s != obj.Name {
				w.fail(p, "is %v, want %q", val, obj.Name)
			}
			continue
		}
		def := obj.Fields.ForName(name)
		if def == nil {
			w.fail(p, "%s has no field %s", obj.Name, name)
			continue
		}
		var subs []ast.SelectionSet
		for _, sf := range f.fields {
			if len(sf.SelectionSet) > 0 {
				subs = append(subs, sf.SelectionSet)
			}
		}
		w.value(def.Type, subs, val, p)
	}
	for _, k := range sortedKeys(v) {
		if !selected[k] {
			w.fail(path+"."+k, "not selected by the document")
		}
	}
}

func (w *walker) value(t *ast.Type, subs []ast.SelectionSet, v any, path string) {
	if v == nil {
		if t.NonNull {
			w.fail(path, "null, but its type %s is non-null", t)
		}
		return
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			w.fail(path, "%s is a list, got %s", t, kind(v))
			return
		}
		for i, e := range list {
			w.value(t.Elem, subs, e, fmt.Sprintf("%s[%d]", path, i))
		}
		return
	}
	def := w.schema.Types[t.NamedType]
	switch def.Kind {
	case ast.Scalar:
		if msg := checkScalar(def.Name, v); msg != "" {
			w.fail(path, "%s", msg)
		}
	case ast.Enum:
		if msg := checkEnum(def, v); msg != "" {
			w.fail(path, "%s", msg)
		}
	case ast.Object, ast.Interface, ast.Union:
		m, ok := v.(map[string]any)
		if !ok {
			w.fail(path, "%s is an object, got %s", def.Name, kind(v))
			return
		}
		w.object(def, subs, m, path)
	}
}

// Deprecated lists the deprecated fields a valid document selects, as
// "Type.field: reason": Shopify still answers them, but removes them in a
// later version.
func Deprecated(schema *ast.Schema, query string) ([]string, error) {
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid document: %w", errs)
	}
	seen := map[string]bool{}
	var out []string
	var visit func(ast.SelectionSet)
	visit = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if d := s.Definition; d != nil {
					if dep := d.Directives.ForName("deprecated"); dep != nil {
						reason := "deprecated"
						if a := dep.Arguments.ForName("reason"); a != nil {
							reason = a.Value.Raw
						}
						k := s.ObjectDefinition.Name + "." + s.Name + ": " + reason
						if !seen[k] {
							seen[k] = true
							out = append(out, k)
						}
					}
				}
				visit(s.SelectionSet)
			case *ast.InlineFragment:
				visit(s.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		visit(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		visit(f.SelectionSet)
	}
	return out, nil
}
