package schema

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Divisions is a division register: region names by division code (a
// prefix form, "500240", or a village's 12 digits). The operator supplies
// it as a file (serve and export --divisions); the demo's is
// fixtures/divisions-demo.csv. A code without a name stays a code.
type Divisions map[string]string

// LoadDivisions reads a register: a UTF-8 CSV (a byte-order mark allowed)
// whose header is code,name, then one region per record. It returns an
// error naming the line of a code that is not 2 to 12 digits, of a record
// without a name, and of a code given twice.
func LoadDivisions(path string) (Divisions, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	d := Divisions{}
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("division register %s: %w", path, err)
		}
		code, name := strings.TrimSpace(strings.TrimPrefix(rec[0], "\uFEFF")), strings.TrimSpace(rec[1])
		if line == 1 {
			if code != "code" || name != "name" {
				return nil, fmt.Errorf("division register %s: line 1: the header must be code,name", path)
			}
			continue
		}
		switch {
		case !IsRegion(code):
			return nil, fmt.Errorf("division register %s: line %d: the code must be 2 to 12 digits", path, line)
		case name == "":
			return nil, fmt.Errorf("division register %s: line %d: no name for %s", path, line, code)
		case d[code] != "":
			return nil, fmt.Errorf("division register %s: line %d: %s is named twice", path, line, code)
		}
		d[code] = name
	}
	return d, nil
}

// Name is the region's name, or the code itself when the register has
// none.
func (d Divisions) Name(code string) string {
	if n := d[code]; n != "" {
		return n
	}
	return code
}

// IsRegion reports whether s can name a region as a division-code prefix:
// 2 to 12 digits (a prefix need not stop at a level: 5002401 selects the
// villages whose codes begin so).
func IsRegion(s string) bool { return len(s) >= 2 && len(s) <= 12 && IsDigits(s) }
