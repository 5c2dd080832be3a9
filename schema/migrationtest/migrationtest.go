// Package migrationtest draws random migrations between schema versions,
// and random records valid under a form, for the property tests of the
// migration engine (schema) and of merging across versions (syncproto). It
// is for tests only.
package migrationtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"pgregory.net/rapid"
)

// Drawn is a random migration: the newer schema made from the older one
// by the steps, the steps as a version.json declares them, the compiled
// migration, and what the steps do to each older field, by entity.
type Drawn struct {
	From, To  *schema.Schema
	Steps     json.RawMessage
	Migration *schema.Migration
	// Dropped names, by entity, the older fields a drop step takes out.
	Dropped map[string][]string
	// Renamed maps, by entity, an older field's name to its newer one.
	Renamed map[string]map[string]string
	// Folded names, by entity, the older fields a map folds (several older
	// values become one newer value), with the newer values that do.
	Folded map[string]map[string][]string
}

type stepJSON struct {
	Op     string            `json:"op"`
	Entity string            `json:"entity"`
	Field  string            `json:"field"`
	To     string            `json:"to,omitempty"`
	Values map[string]string `json:"values,omitempty"`
	Value  any               `json:"value,omitempty"`
	From   string            `json:"from,omitempty"`
	Cases  []map[string]any  `json:"cases,omitempty"`
}

// DrawMigration draws a random list of valid steps on from's forms (per
// field: kept, renamed, its values mapped, or dropped; per form: maybe a
// derived field and a defaulted new field), builds the newer schema they
// lead to (version from.Version+1) and compiles the migration; it fails
// the test when the engine refuses valid steps. Fields the forms name
// elsewhere (scope, parent, region rules, references) are only kept or
// mapped. A safety_first field's values map one-to-one (a fold could break
// the severity order); derived fields, lww themselves, read lww fields.
func DrawMigration(t *rapid.T, from *schema.Schema) *Drawn {
	d := &Drawn{From: from, Dropped: map[string][]string{}, Renamed: map[string]map[string]string{},
		Folded: map[string]map[string][]string{}}
	var renames, maps, derives, defaults, drops []stepJSON
	var forms []json.RawMessage
	for _, f := range from.Forms {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var nf schema.Form
		if err := json.Unmarshal(b, &nf); err != nil {
			t.Fatal(err)
		}
		// A form's role for the reports names its fields and values; the
		// drawn steps rename, map and drop them freely, so the newer form
		// plays none (roles are no part of what a migration carries).
		nf.Role = nil
		pinned := map[string]bool{f.ScopeField: true}
		if f.Parent != nil {
			pinned[f.Parent.Field] = true
		}
		for _, r := range f.RegionRules {
			for _, n := range r.Require {
				pinned[n] = true
			}
		}
		var kept []schema.Field
		type source struct {
			name string // at the derive step
			fd   schema.Field
		}
		var sources []source
		for _, fd := range nf.Fields {
			ops := []string{"keep", "keep"}
			if !pinned[fd.Name] && fd.Type != schema.TypeReference {
				ops = append(ops, "rename", "drop")
			}
			if len(fd.Values) > 0 {
				ops = append(ops, "map", "map")
			}
			op := rapid.SampledFrom(ops).Draw(t, f.Entity+"."+fd.Name)
			lwwSource := fd.Policy == schema.PolicyLWW && (fd.Type == schema.TypeNumber || fd.Type == schema.TypeInteger || fd.Type == schema.TypeEnum)
			switch op {
			case "keep":
				if lwwSource {
					sources = append(sources, source{fd.Name, fd})
				}
				kept = append(kept, fd)
			case "rename":
				newName := fd.Name + "_r"
				renames = append(renames, stepJSON{Op: "rename", Entity: f.Entity, Field: fd.Name, To: newName})
				if d.Renamed[f.Entity] == nil {
					d.Renamed[f.Entity] = map[string]string{}
				}
				d.Renamed[f.Entity][fd.Name] = newName
				fd.Name = newName
				if lwwSource {
					sources = append(sources, source{fd.Name, fd})
				}
				kept = append(kept, fd)
			case "drop":
				drops = append(drops, stepJSON{Op: "drop", Entity: f.Entity, Field: fd.Name})
				d.Dropped[f.Entity] = append(d.Dropped[f.Entity], fd.Name)
				if lwwSource {
					sources = append(sources, source{fd.Name, fd})
				}
			case "map":
				values := map[string]string{}
				var newValues []string
				fold := fd.Policy != schema.PolicySafetyFirst
				for i, v := range fd.Values {
					if !rapid.Bool().Draw(t, "map "+v) {
						newValues = append(newValues, v)
						continue
					}
					nv := fmt.Sprintf("%s_m%d", v, i)
					if fold {
						nv = fmt.Sprintf("m%d", rapid.IntRange(0, 2).Draw(t, "into "+v))
					}
					values[v] = nv
					if !slices.Contains(newValues, nv) {
						newValues = append(newValues, nv)
					}
				}
				if len(values) == 0 {
					kept = append(kept, fd)
					continue
				}
				maps = append(maps, stepJSON{Op: "map", Entity: f.Entity, Field: fd.Name, Values: values})
				byNew := map[string]int{}
				for _, nv := range values {
					byNew[nv]++
				}
				for nv, n := range byNew {
					if n > 1 {
						if d.Folded[f.Entity] == nil {
							d.Folded[f.Entity] = map[string][]string{}
						}
						d.Folded[f.Entity][fd.Name] = append(d.Folded[f.Entity][fd.Name], nv)
					}
				}
				labels := map[string]map[string]string{}
				for v, l := range fd.ValueLabels {
					if _, mapped := values[v]; !mapped {
						labels[v] = l
					}
				}
				var severity []json.RawMessage
				for _, s := range fd.Severity {
					var v string
					_ = json.Unmarshal(s, &v)
					if nv, ok := values[v]; ok {
						v = nv
					}
					b, _ := json.Marshal(v)
					severity = append(severity, b)
				}
				fd.Values, fd.ValueLabels, fd.Severity = newValues, labels, severity
				kept = append(kept, fd)
			}
		}
		if len(sources) > 0 && rapid.Bool().Draw(t, f.Entity+" derives") {
			src := rapid.SampledFrom(sources).Draw(t, f.Entity+" derive source")
			name := "derived_" + f.Entity
			var cases []map[string]any
			if src.fd.Type == schema.TypeEnum {
				cases = []map[string]any{{"equals": rapid.SampledFrom(src.fd.Values).Draw(t, "equals"), "value": "hi"}, {"value": "lo"}}
			} else {
				cut := rapid.IntRange(0, 100).Draw(t, "cut")
				cases = []map[string]any{{"max": cut, "value": "lo"}, {"min": cut, "value": "hi"}}
			}
			derives = append(derives, stepJSON{Op: "derive", Entity: f.Entity, Field: name, From: src.name, Cases: cases})
			kept = append(kept, schema.Field{Name: name, Type: schema.TypeEnum, Values: []string{"lo", "hi"}, Policy: schema.PolicyLWW})
		}
		if rapid.Bool().Draw(t, f.Entity+" defaults") {
			name := "added_" + f.Entity
			v := rapid.IntRange(0, 5).Draw(t, "default")
			defaults = append(defaults, stepJSON{Op: "default", Entity: f.Entity, Field: name, Value: v})
			kept = append(kept, schema.Field{Name: name, Type: schema.TypeInteger, Policy: schema.PolicyLWW,
				Required: rapid.Bool().Draw(t, "required")})
		}
		nf.Fields = kept
		b, err = json.Marshal(nf)
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, b)
	}
	steps := slices.Concat(renames, maps, derives, defaults, drops)
	if steps == nil {
		steps = []stepJSON{}
	}
	var err error
	if d.Steps, err = json.Marshal(steps); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"schema_version": %d, "forms": [%s]}`, from.Version+1, joinRaw(forms))
	if d.To, err = schema.Parse([]byte(doc)); err != nil {
		t.Fatalf("the drawn newer schema: %v", err)
	}
	if d.Migration, err = schema.CompileMigration(from, d.To, d.Steps); err != nil {
		t.Fatalf("valid steps %s refused: %v", d.Steps, err)
	}
	return d
}

func joinRaw(list []json.RawMessage) string {
	parts := make([]string, len(list))
	for i, r := range list {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

// DrawRecord draws fields valid under form, in canonical form: each field
// with even odds, a field that is not required sometimes null; with all
// set true, every required field is there (a new record).
func DrawRecord(t *rapid.T, form *schema.Form, all bool) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for i := range form.Fields {
		fd := &form.Fields[i]
		if !(all && fd.Required) && !rapid.Bool().Draw(t, "has "+fd.Name) {
			continue
		}
		if !fd.Required && rapid.IntRange(0, 5).Draw(t, "null "+fd.Name) == 0 {
			out[fd.Name] = schema.Null
			continue
		}
		out[fd.Name] = drawValue(t, fd)
	}
	norm, errs := form.Validate(out)
	if errs != nil {
		t.Fatalf("drawn record %v not valid: %v", out, errs)
	}
	return norm
}

func drawValue(t *rapid.T, fd *schema.Field) json.RawMessage {
	var v any
	switch fd.Type {
	case schema.TypeText:
		v = rapid.StringMatching(`[a-z]{1,8}`).Draw(t, fd.Name)
	case schema.TypeInteger, schema.TypeNumber:
		lo, hi := 0, 1000
		if fd.Min != nil {
			lo = int(*fd.Min)
		}
		if fd.Max != nil {
			hi = int(*fd.Max)
		}
		n := rapid.IntRange(lo, hi).Draw(t, fd.Name)
		if fd.Type == schema.TypeNumber && n < hi && rapid.Bool().Draw(t, fd.Name+" half") {
			v = float64(n) + 0.5
		} else {
			v = n
		}
	case schema.TypeBoolean:
		v = rapid.Bool().Draw(t, fd.Name)
	case schema.TypeEnum:
		v = rapid.SampledFrom(fd.Values).Draw(t, fd.Name)
	case schema.TypeSet:
		if fd.Items == "sha256" {
			v = []string{strings.Repeat(rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, fd.Name), 64)}
		} else {
			items := rapid.SliceOfDistinct(rapid.SampledFrom(fd.Values), func(s string) string { return s }).Draw(t, fd.Name)
			if items == nil {
				items = []string{}
			}
			v = items
		}
	case schema.TypeDate:
		v = fmt.Sprintf("20%02d-%02d-%02d", rapid.IntRange(0, 25).Draw(t, "year"), rapid.IntRange(1, 12).Draw(t, "month"), rapid.IntRange(1, 28).Draw(t, "day"))
	case schema.TypeDivisionCode:
		v = rapid.SampledFrom([]string{"500240107201", "150422101203"}).Draw(t, fd.Name)
	case schema.TypeReference:
		v = fmt.Sprintf("0193b7c2-3333-7000-8000-%012d", rapid.IntRange(0, 9).Draw(t, fd.Name))
	case schema.TypeLocation:
		v = map[string]float64{"lat": float64(rapid.IntRange(-90, 90).Draw(t, "lat")), "lon": float64(rapid.IntRange(-180, 180).Draw(t, "lon"))}
	default:
		t.Fatalf("no generator for type %s", fd.Type)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
