package console

import "strings"

// departmentLabel is a department (the forms' departments.json) by its
// label in lang, or its name when the forms do not label it.
func (c *Console) departmentLabel(name, lang string) string {
	if d := c.cfg.Schema.Registries().Department(name); d != nil && d.Labels[lang] != "" {
		return d.Labels[lang]
	}
	return name
}

// who is how the console names a change's user and department: a user
// name with its department's label, and the user a registry import's
// changes carry ("department:NAME", syncproto/reconcile_conflicts.go) as
// that department's list.
func (c *Console) who(id, dept, lang string) string {
	if d, ok := strings.CutPrefix(id, "department:"); ok {
		return t(lang, "list_of") + c.departmentLabel(d, lang)
	}
	if dept != "" {
		return id + " (" + c.departmentLabel(dept, lang) + ")"
	}
	return id
}
