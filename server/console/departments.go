package console

// departmentLabel is a department (the forms' departments.json) by its
// label in lang, or its name when the forms do not label it.
func (c *Console) departmentLabel(name, lang string) string {
	if d := c.cfg.Schema.Registries().Department(name); d != nil && d.Labels[lang] != "" {
		return d.Labels[lang]
	}
	return name
}
