package schema

// DivisionLevels are the lengths of a division-code prefix that name a
// whole region: province (2 digits), prefecture (4), county (6), township
// (9) and village (12).
var DivisionLevels = []int{2, 4, 6, 9, 12}

// IsDivisionPrefix reports whether s is the code of a whole region at one
// of the DivisionLevels: digits only, 2, 4, 6, 9 or 12 of them. A 7-digit
// "5002401" is not: it names no region.
func IsDivisionPrefix(s string) bool {
	if !IsDigits(s) {
		return false
	}
	for _, n := range DivisionLevels {
		if len(s) == n {
			return true
		}
	}
	return false
}
