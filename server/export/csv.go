package export

import (
	"io"
	"regexp"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
)

// csvWriter writes RFC 4180 records: fields separated by commas, each
// record ended by CR LF, a field quoted when it holds a comma, a quote, a
// CR or an LF or starts with a space or a tab, quotes doubled. Unlike
// encoding/csv with UseCRLF, a line feed inside a value stays a line feed:
// what a reader gets back is the value's bytes.
type csvWriter struct {
	w   io.Writer
	buf []byte
}

// Write writes one record.
func (c *csvWriter) Write(fields []string) error {
	b := c.buf[:0]
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		if !csvNeedsQuotes(f) {
			b = append(b, f...)
			continue
		}
		b = append(b, '"')
		b = append(b, strings.ReplaceAll(f, `"`, `""`)...)
		b = append(b, '"')
	}
	b = append(b, '\r', '\n')
	c.buf = b
	_, err := c.w.Write(b)
	return err
}

func csvNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f[0] == ' ' || f[0] == '\t' {
		return true
	}
	return strings.ContainsAny(f, ",\"\r\n")
}

// numberLike matches what a spreadsheet reads as a number: digits (leading
// zeros included), a sign, a decimal point, an exponent.
var numberLike = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// plainInteger matches an integer a spreadsheet reads back as the same
// digits: no sign, no leading zero, at most 15 digits (the precision of a
// double, past which Excel and LibreOffice replace the last digits by
// zeros).
var plainInteger = regexp.MustCompile(`^[1-9][0-9]{0,14}$`)

// keepText prepares a text cell of a CSV for spreadsheets. A CSV has no
// types, so Excel and LibreOffice read a 16-digit registration number as a
// number (losing its last digit), drop leading zeros and turn "1e5" into
// 100000. A value of a text, division-code or reference field that a
// spreadsheet would change that way therefore starts with a tab, which
// both keep as text, the way ID numbers (身份证号) are commonly exported; a
// reader of the CSV strips that one leading tab (docs/operators.md). A
// value a spreadsheet reads back as the same digits (a 12-digit village
// code) is left as it is, so that scripts joining on codes see what they
// always saw. The `="…"` formula trick is not used: it is a formula (what
// defuseFormula guards against), and other readers see the formula, not
// the value. Text that starts like a formula gets its apostrophe first
// (defuseFormula).
func keepText(fd *schema.Field, s string) string {
	if fd == nil {
		return s
	}
	switch fd.Type {
	case schema.TypeText:
		s = defuseFormula(s)
	case schema.TypeDivisionCode, schema.TypeReference:
	default:
		return s
	}
	if numberLike.MatchString(s) && !plainInteger.MatchString(s) {
		return "\t" + s
	}
	return s
}
