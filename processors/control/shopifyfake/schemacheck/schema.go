// Package schemacheck checks GraphQL traffic against Shopify's published
// Admin API schema, so that the client (adminapi) and the fake Shopify
// (shopifyfake) are checked against Shopify rather than against each other:
//
//   - Load reads an introspection result (the admin_<version>.json.gz files
//     of the npm package @shopify/dev-mcp) into a gqlparser schema;
//   - ValidateDocument validates a document and its variables, as Shopify
//     would before running it;
//   - ValidateResponse checks that a response has the shape a GraphQL server
//     with that schema can send for that document and those variables.
//
// It is test support: deploy/local/test.sh fetches the schemas and points
// PURCHASESYNC_SHOPIFY_SCHEMA_DIR at them (see FromEnv).
package schemacheck

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// introspection is the part of an introspection result the schema needs.
type introspection struct {
	Data struct {
		Schema struct {
			QueryType        *struct{ Name string } `json:"queryType"`
			MutationType     *struct{ Name string } `json:"mutationType"`
			SubscriptionType *struct{ Name string } `json:"subscriptionType"`
			Types            []iType                `json:"types"`
			Directives       []struct {
				Name         string   `json:"name"`
				Locations    []string `json:"locations"`
				Args         []iInput `json:"args"`
				IsRepeatable bool     `json:"isRepeatable"`
			} `json:"directives"`
		} `json:"__schema"`
	} `json:"data"`
}

type iTypeRef struct {
	Kind   string    `json:"kind"`
	Name   *string   `json:"name"`
	OfType *iTypeRef `json:"ofType"`
}

type iInput struct {
	Name              string   `json:"name"`
	Type              iTypeRef `json:"type"`
	DefaultValue      *string  `json:"defaultValue"`
	IsDeprecated      bool     `json:"isDeprecated"`
	DeprecationReason *string  `json:"deprecationReason"`
}

type iType struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Fields []struct {
		Name              string   `json:"name"`
		Args              []iInput `json:"args"`
		Type              iTypeRef `json:"type"`
		IsDeprecated      bool     `json:"isDeprecated"`
		DeprecationReason *string  `json:"deprecationReason"`
	} `json:"fields"`
	InputFields []iInput `json:"inputFields"`
	Interfaces  []struct {
		Name string `json:"name"`
	} `json:"interfaces"`
	EnumValues []struct {
		Name              string  `json:"name"`
		IsDeprecated      bool    `json:"isDeprecated"`
		DeprecationReason *string `json:"deprecationReason"`
	} `json:"enumValues"`
	PossibleTypes []struct {
		Name string `json:"name"`
	} `json:"possibleTypes"`
	IsOneOf *bool `json:"isOneOf"`
}

func (r iTypeRef) sdl() string {
	switch r.Kind {
	case "NON_NULL":
		return r.OfType.sdl() + "!"
	case "LIST":
		return "[" + r.OfType.sdl() + "]"
	}
	if r.Name == nil {
		return "?"
	}
	return *r.Name
}

// builtin is what gqlparser's prelude already declares.
var builtin = map[string]bool{
	"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true,
	"include": true, "skip": true, "deprecated": true, "specifiedBy": true, "oneOf": true, "defer": true,
}

func deprecated(is bool, reason *string) string {
	if !is {
		return ""
	}
	if reason == nil {
		return " @deprecated"
	}
	r, _ := json.Marshal(*reason)
	return " @deprecated(reason: " + string(r) + ")"
}

func inputs(b *strings.Builder, args []iInput, sep string) {
	for i, a := range args {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(a.Name + ": " + a.Type.sdl())
		if a.DefaultValue != nil {
			b.WriteString(" = " + *a.DefaultValue)
		}
		b.WriteString(deprecated(a.IsDeprecated, a.DeprecationReason))
	}
}

// SDL renders an introspection result (the JSON of an introspection query,
// {"data":{"__schema":…}}) as schema definition language, without
// descriptions: what validation needs.
func SDL(introspectionJSON []byte) (string, error) {
	var in introspection
	if err := json.Unmarshal(introspectionJSON, &in); err != nil {
		return "", fmt.Errorf("not an introspection result: %w", err)
	}
	s := in.Data.Schema
	if s.QueryType == nil || len(s.Types) == 0 {
		return "", fmt.Errorf("not an introspection result: no __schema.queryType or types")
	}
	var b strings.Builder
	b.WriteString("schema {\n  query: " + s.QueryType.Name + "\n")
	if s.MutationType != nil {
		b.WriteString("  mutation: " + s.MutationType.Name + "\n")
	}
	if s.SubscriptionType != nil {
		b.WriteString("  subscription: " + s.SubscriptionType.Name + "\n")
	}
	b.WriteString("}\n")
	for _, d := range s.Directives {
		if builtin[d.Name] {
			continue
		}
		b.WriteString("directive @" + d.Name)
		if len(d.Args) > 0 {
			b.WriteString("(")
			inputs(&b, d.Args, ", ")
			b.WriteString(")")
		}
		if d.IsRepeatable {
			b.WriteString(" repeatable")
		}
		b.WriteString(" on " + strings.Join(d.Locations, " | ") + "\n")
	}
	for _, t := range s.Types {
		if strings.HasPrefix(t.Name, "__") || builtin[t.Name] {
			continue
		}
		switch t.Kind {
		case "SCALAR":
			b.WriteString("scalar " + t.Name + "\n")
		case "ENUM":
			b.WriteString("enum " + t.Name + " {\n")
			for _, v := range t.EnumValues {
				b.WriteString("  " + v.Name + deprecated(v.IsDeprecated, v.DeprecationReason) + "\n")
			}
			b.WriteString("}\n")
		case "UNION":
			names := make([]string, len(t.PossibleTypes))
			for i, p := range t.PossibleTypes {
				names[i] = p.Name
			}
			b.WriteString("union " + t.Name + " = " + strings.Join(names, " | ") + "\n")
		case "INPUT_OBJECT":
			b.WriteString("input " + t.Name)
			if t.IsOneOf != nil && *t.IsOneOf {
				b.WriteString(" @oneOf")
			}
			b.WriteString(" {\n")
			for _, f := range t.InputFields {
				b.WriteString("  ")
				inputs(&b, []iInput{f}, "")
				b.WriteString("\n")
			}
			b.WriteString("}\n")
		case "OBJECT", "INTERFACE":
			if t.Kind == "OBJECT" {
				b.WriteString("type " + t.Name)
			} else {
				b.WriteString("interface " + t.Name)
			}
			for i, it := range t.Interfaces {
				if i == 0 {
					b.WriteString(" implements ")
				} else {
					b.WriteString(" & ")
				}
				b.WriteString(it.Name)
			}
			b.WriteString(" {\n")
			for _, f := range t.Fields {
				b.WriteString("  " + f.Name)
				if len(f.Args) > 0 {
					b.WriteString("(")
					inputs(&b, f.Args, ", ")
					b.WriteString(")")
				}
				b.WriteString(": " + f.Type.sdl() + deprecated(f.IsDeprecated, f.DeprecationReason) + "\n")
			}
			b.WriteString("}\n")
		default:
			return "", fmt.Errorf("type %s has an unknown kind %q", t.Name, t.Kind)
		}
	}
	return b.String(), nil
}

// Parse builds a schema from an introspection result.
func Parse(name string, introspectionJSON []byte) (*ast.Schema, error) {
	sdl, err := SDL(introspectionJSON)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: name, Input: sdl})
	if err != nil {
		return nil, fmt.Errorf("%s: the schema rendered from the introspection result does not load: %w", name, err)
	}
	return schema, nil
}

var cache sync.Map // path → *loaded

type loaded struct {
	once   sync.Once
	schema *ast.Schema
	err    error
}

// Load reads an introspection result, gzipped (…json.gz) or not, into a
// schema. Schemas are cached by path: loading one takes a few hundred
// milliseconds, and every test of a package shares it.
func Load(path string) (*ast.Schema, error) {
	v, _ := cache.LoadOrStore(path, &loaded{})
	l := v.(*loaded)
	l.once.Do(func() { l.schema, l.err = load(path) })
	return l.schema, l.err
}

func load(path string) (*ast.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, raw)
}
