package export

import (
	"strings"

	"golang.org/x/text/language"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// LangCodes asks for a table in codes: field keys as headers, enum codes as
// values (what the CSV and XLSX were before they had labels).
const LangCodes = "codes"

// InCodes reports whether a table in lang shows keys and codes (codes, or
// no language) rather than labels.
func InCodes(lang string) bool { return lang == "" || lang == LangCodes }

// langMatcher picks zh or en for an Accept-Language header (golang.org/x/
// text/language: it knows zh-CN, zh-Hans, en-GB and the weights); a header
// that names neither gets en.
var langMatcher = language.NewMatcher([]language.Tag{language.English, language.Chinese})

// TableLang is the language of a tabular snapshot: lang when given (zh, en
// or codes; anything else is an error at lang), else the best match
// of acceptLanguage, else codes. Without Accept-Language (curl, scripts,
// fieldsync export without --lang) a table keeps its codes, so that
// programs reading it by header see what they always saw; a browser always
// sends the header and gets labels.
func TableLang(lang, acceptLanguage string) (string, *syncproto.FieldError) {
	switch lang = strings.TrimSpace(lang); lang {
	case schema.LangZH, schema.LangEN, LangCodes:
		return lang, nil
	case "":
	default:
		return "", &syncproto.FieldError{Path: "lang", Message: "must be one of zh, en, codes"}
	}
	if strings.TrimSpace(acceptLanguage) == "" {
		return LangCodes, nil
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return schema.LangEN, nil
	}
	_, i, _ := langMatcher.Match(tags...)
	if i == 1 {
		return schema.LangZH, nil
	}
	return schema.LangEN, nil
}

// header is the column's header in its language: the key in codes, else
// the schema's label (the key where the schema has none).
func (c tableColumn) header() string {
	if InCodes(c.lang) {
		return c.name
	}
	if c.field == nil {
		// A record's own column, labelled in schema/labels/tables.json.
		return schema.Tables().Column(c.name, "", c.lang)
	}
	h := c.field.LabelIn(c.lang)
	if c.part != "" {
		h = schema.Tables().Column("location_"+c.part, h, c.lang)
	}
	return h
}

// valueLabel is a value of an enum (or an item of a set) in the column's
// language.
func (c tableColumn) valueLabel(v string) string {
	if InCodes(c.lang) {
		return v
	}
	return c.field.ValueLabelIn(v, c.lang)
}
