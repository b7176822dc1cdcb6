package schemas

import (
	"encoding/json"
	"strings"
)

// JSONPath names a value inside a JSON object, as ComparedField says where
// an order carries a field: keys joined by "." ("shippingAddress.zip"). A
// key ending in "[]" is a list: the rest of the path is a key of each
// element ("discount_codes[].code"), or, at the end, the elements are the
// values ("discountCodes[]"). A list's values are one value joined by ",",
// as the join stores lists.
//
// It works on what encoding/json decodes into an any (with UseNumber for
// exact ids), so that a field can be carried from one shape of an order to
// another (GraphQL to REST) by its row alone.
type JSONPath string

func (p JSONPath) keys() []string { return strings.Split(string(p), ".") }

// Get returns the value at p in obj; ok is false when it is absent, null
// or empty.
func (p JSONPath) Get(obj map[string]any) (v string, ok bool) {
	var vals []string
	collect(obj, p.keys(), &vals)
	v = strings.Join(vals, ",")
	return v, v != ""
}

func collect(node any, keys []string, out *[]string) {
	if len(keys) == 0 {
		switch v := node.(type) {
		case string:
			if v != "" {
				*out = append(*out, v)
			}
		case json.Number:
			*out = append(*out, v.String())
		}
		return
	}
	obj, _ := node.(map[string]any)
	key, list := strings.CutSuffix(keys[0], "[]")
	next, ok := obj[key]
	if !ok {
		return
	}
	if !list {
		collect(next, keys[1:], out)
		return
	}
	elems, _ := next.([]any)
	for _, e := range elems {
		collect(e, keys[1:], out)
	}
}

// Set writes v at p in obj, making the objects and lists on the way (a
// list gets one element per ","-separated part of v). An empty v is a JSON
// null, written only where the path first leaves obj (a missing object is
// null, not an object of nulls); a present value is then left alone.
func (p JSONPath) Set(obj map[string]any, v string) {
	keys := p.keys()
	for i, k := range keys {
		key, list := strings.CutSuffix(k, "[]")
		rest := keys[i+1:]
		if v == "" {
			if _, ok := obj[key]; !ok {
				obj[key] = nil
				return
			}
			next, ok := obj[key].(map[string]any)
			if !ok || list {
				return
			}
			obj = next
			continue
		}
		if list {
			elems := []any{}
			for _, part := range strings.Split(v, ",") {
				if len(rest) == 0 {
					elems = append(elems, part)
					continue
				}
				e := map[string]any{}
				JSONPath(strings.Join(rest, ".")).Set(e, part)
				elems = append(elems, e)
			}
			obj[key] = elems
			return
		}
		if len(rest) == 0 {
			obj[key] = v
			return
		}
		next, ok := obj[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[key] = next
		}
		obj = next
	}
}

// Selection is p as a GraphQL selection ("shippingAddress { zip }").
func (p JSONPath) Selection() string {
	keys := p.keys()
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" { ")
		}
		b.WriteString(strings.TrimSuffix(k, "[]"))
	}
	b.WriteString(strings.Repeat(" }", len(keys)-1))
	return b.String()
}
