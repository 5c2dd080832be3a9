package export

import (
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/schema"
)

// sheetNames names a snapshot workbook's sheets, one per entity: in zh or
// en the form's title in that language (its "titles"), else — in codes, or
// for a form without a title in the language, as version 1's forms are —
// the entity. A title is cut to the 31 characters a sheet name may hold,
// with the characters a sheet name may not (: \ / ? * [ ]) replaced; a
// title two forms share falls back to the entity.
func sheetNames(sch *schema.Schema, entities []string, lang string) []string {
	names := make([]string, len(entities))
	seen := map[string]bool{}
	for i, entity := range entities {
		names[i] = entity
		if InCodes(lang) {
			continue
		}
		f := sch.Form(entity)
		if f == nil || f.Titles[lang] == "" {
			continue
		}
		title := strings.Map(func(r rune) rune {
			if strings.ContainsRune(`:\/?*[]`, r) {
				return '_'
			}
			return r
		}, f.Titles[lang])
		for utf8.RuneCountInString(title) > 31 {
			_, size := utf8.DecodeLastRuneInString(title)
			title = title[:len(title)-size]
		}
		if !seen[title] {
			names[i] = title
		}
		seen[title] = true
	}
	for i, entity := range entities {
		if names[i] != entity && countOf(names, names[i]) > 1 {
			names[i] = entity
		}
	}
	return names
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
