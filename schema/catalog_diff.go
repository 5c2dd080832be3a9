package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Diff lists, one line each, what changed from the forms of old to those
// of new: forms added and removed, fields added, removed and retyped,
// enum (and set) values added and removed, and a form changed otherwise
// (labels, rules, bounds). No lines: the forms are the same.
func Diff(old, new *Schema) []string {
	var out []string
	for _, f := range new.Forms {
		if old.Form(f.Entity) == nil {
			out = append(out, fmt.Sprintf("form %s added (%d fields)", f.Entity, len(f.Fields)))
		}
	}
	for _, of := range old.Forms {
		nf := new.Form(of.Entity)
		if nf == nil {
			out = append(out, fmt.Sprintf("form %s removed", of.Entity))
			continue
		}
		before := len(out)
		for _, fd := range nf.Fields {
			if of.Field(fd.Name) == nil {
				out = append(out, fmt.Sprintf("field %s.%s added (%s)", of.Entity, fd.Name, fd.Type))
			}
		}
		for _, ofd := range of.Fields {
			nfd := nf.Field(ofd.Name)
			if nfd == nil {
				out = append(out, fmt.Sprintf("field %s.%s removed", of.Entity, ofd.Name))
				continue
			}
			where := of.Entity + "." + ofd.Name
			if ofd.Type != nfd.Type {
				out = append(out, fmt.Sprintf("field %s retyped: %s → %s", where, ofd.Type, nfd.Type))
			}
			if added := missing(nfd.Values, ofd.Values); len(added) > 0 {
				out = append(out, fmt.Sprintf("field %s: values added: %s", where, strings.Join(added, ", ")))
			}
			if removed := missing(ofd.Values, nfd.Values); len(removed) > 0 {
				out = append(out, fmt.Sprintf("field %s: values removed: %s", where, strings.Join(removed, ", ")))
			}
			if len(out) == before && !sameJSON(ofd, nfd) {
				out = append(out, fmt.Sprintf("field %s changed (policy, bounds, labels or rules)", where))
			}
		}
		if len(out) == before && !sameJSON(of, nf) {
			out = append(out, fmt.Sprintf("form %s changed (title, rules or standards)", of.Entity))
		}
	}
	return out
}

// MigrationSteps lists version n's migration steps, one compact JSON
// object a line, as its VersionFile declares them.
func (c *Catalog) MigrationSteps(n int) []string {
	var steps []json.RawMessage
	if err := json.Unmarshal(c.Info(n).Migrations, &steps); err != nil {
		return nil
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		var buf bytes.Buffer
		if json.Compact(&buf, s) != nil {
			buf.Reset()
			buf.Write(s)
		}
		out[i] = buf.String()
	}
	return out
}

// missing returns the values of a that b lacks, sorted.
func missing(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !contains(b, v) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
