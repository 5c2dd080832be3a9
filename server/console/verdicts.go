package console

import (
	"strings"

	"github.com/fieldsync/fieldsync/schema/verify"
)

// villageVerdicts is a village's verdicts (GET /v1/reports/verification
// for the one village): how many households are verified, blocked by each
// guarantee, incomplete, and the households not verified with why.
type villageVerdicts struct {
	AsOf       string
	Area       verify.Area
	Guarantees []guaranteeCount
}

// guaranteeCount is one guarantee with its labels and the households it
// blocks.
type guaranteeCount struct {
	Name    string
	Labels  map[string]string
	Blocked int
}

// label is the guarantee's label in lang, else its name.
func (g guaranteeCount) Label(lang string) string {
	if l := g.Labels[lang]; l != "" {
		return l
	}
	return g.Name
}

// Labels are the guarantees named, by their labels in lang, joined.
func (v *villageVerdicts) Labels(names []string, lang string) string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		label := n
		for _, g := range v.Guarantees {
			if g.Name == n {
				label = g.Label(lang)
			}
		}
		out = append(out, label)
	}
	sep := ", "
	if lang != "en" {
		sep = "、"
	}
	return strings.Join(out, sep)
}
