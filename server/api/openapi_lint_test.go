package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/api"
)

// TestOpenAPIGeneratorSafe: the structural rules that the maintained
// linters and oapi-codegen enforce (make lint-openapi runs them), checked
// here too so that an addition that breaks them fails go test at once: no
// component name is used twice across sections, or by a type that
// oapi-codegen derives from an operationId; no $ref has siblings; no
// nullable without a type.
func TestOpenAPIGeneratorSafe(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for section, m := range doc.Components {
		for name := range m {
			if other, dup := names[name]; dup {
				t.Errorf("component %s is both a %s and a %s: oapi-codegen makes one Go type of each", name, other, section)
			}
			names[name] = section
		}
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if json.Unmarshal(raw, &op) != nil || op.OperationID == "" {
				continue
			}
			base := strings.ToUpper(op.OperationID[:1]) + op.OperationID[1:]
			for _, suffix := range []string{"", "Response", "Params", "JSONBody", "JSONRequestBody"} {
				if section, dup := names[base+suffix]; dup {
					t.Errorf("%s %s: oapi-codegen's type %s for operationId %s collides with the %s of that name",
						method, path, base+suffix, op.OperationID, section)
				}
			}
		}
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok && len(v) > 1 {
				t.Errorf("%s: $ref with siblings (they are ignored in OpenAPI 3.0; wrap the $ref in allOf)", where)
			}
			if _, ok := v["nullable"]; ok {
				if _, typed := v["type"]; !typed {
					t.Errorf("%s: nullable without type", where)
				}
			}
			for k, x := range v {
				walk(where+"/"+k, x)
			}
		case []any:
			for _, x := range v {
				walk(where+"[]", x)
			}
		}
	}
	var all any
	_ = json.Unmarshal(api.OpenAPIDocument, &all)
	walk("#", all)
}
