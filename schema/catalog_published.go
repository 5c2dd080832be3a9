package schema

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// WithPublished holds the set to the versions a server has published
// before, given as their canonical documents by number (Catalog.Document,
// as a store keeps them). A published version is immutable: every version
// of the set that was published must equal it byte for byte, else the
// error names the version and what differs. A published version the set
// lacks (beyond its latest) is still served: it is read back from its
// document and appended. The published versions and the set's together
// must be consecutive from 1. The result is the set to serve; the
// versions of c that are not in published are the ones to publish now.
func (c *Catalog) WithPublished(published map[int][]byte) (*Catalog, error) {
	numbers := slices.Sorted(maps.Keys(published))
	var problems []string
	for _, n := range numbers {
		if n > len(c.versions) {
			continue
		}
		if bytes.Equal(published[n], c.docs[n-1]) {
			continue
		}
		old, info, err := ParseDocument(published[n])
		if err != nil {
			problems = append(problems, fmt.Sprintf("version %d: the published document cannot be read: %v", n, err))
			continue
		}
		what := Diff(old, c.versions[n-1])
		if cur := c.infos[n-1]; info.Published != cur.Published || info.Source != cur.Source || !sameJSON(info.Title, cur.Title) {
			what = append(what, "version.json: published, title or source changed")
		}
		if !bytes.Equal(info.Migrations, c.infos[n-1].Migrations) {
			what = append(what, "version.json: migrations changed")
		}
		if len(what) == 0 {
			what = []string{"the canonical document differs"}
		}
		problems = append(problems, fmt.Sprintf("version %d differs from the one published: %s; a published version is immutable: publish the change as version %d",
			n, strings.Join(what, "; "), max(len(c.versions), numbers[len(numbers)-1])+1))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("schema: %s", strings.Join(problems, "\n"))
	}
	out := &Catalog{versions: slices.Clone(c.versions), infos: slices.Clone(c.infos), docs: slices.Clone(c.docs), ups: slices.Clone(c.ups)}
	for _, n := range numbers {
		if n <= len(out.versions) {
			continue
		}
		if n != len(out.versions)+1 {
			return nil, fmt.Errorf("schema: version %d is published but version %d is neither published nor in the form set", n, len(out.versions)+1)
		}
		sch, info, err := ParseDocument(published[n])
		if err != nil {
			return nil, fmt.Errorf("schema: published version %d cannot be read: %w", n, err)
		}
		if errs := out.add(sch, info, "published version "+strconv.Itoa(n)); len(errs) > 0 {
			return nil, fmt.Errorf("schema: published version %d: %w", n, errs)
		}
		// Keep the stored bytes: they are what was published.
		out.docs[n-1] = published[n]
	}
	return out, nil
}
