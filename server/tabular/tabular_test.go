package tabular

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/fieldsync/fieldsync/syncproto"
)

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll returns the header and every row as "line: cells".
func readAll(t *testing.T, path string) (*File, []string) {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h, err := f.Header()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{strings.Join(h, "|")}
	for {
		line, cells, err := f.Next()
		if errors.Is(err, io.EOF) {
			return f, out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(rune('0'+line))+": "+strings.Join(cells, "|"))
	}
}

const table = "户编号,村,户主姓名,家庭人口\nR1,500240107201,谭明华,4\n\"R2\",500240107201,\"冉,秀英\",3\n"

// CSV as Chinese systems export it: UTF-8 with a byte-order mark, without
// one, GBK, and tab-separated, all read to the same rows at their lines.
func TestCSVEncodings(t *testing.T) {
	want := []string{"户编号|村|户主姓名|家庭人口", "2: R1|500240107201|谭明华|4", "3: R2|500240107201|冉,秀英|3"}
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(table)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ data, encoding string }{
		"bom":  {"\ufeff" + table, "utf-8"},
		"utf8": {table, "utf-8"},
		"gbk":  {gbk, "gb18030"},
		"tabs": {"户编号\t村\t户主姓名\t家庭人口\nR1\t500240107201\t谭明华\t4\nR2\t500240107201\t冉,秀英\t3\n", "utf-8"},
	} {
		f, got := readAll(t, write(t, name+".csv", []byte(c.data)))
		if !slices.Equal(got, want) || f.Encoding != c.encoding || f.Format != "csv" {
			t.Errorf("%s: %v (%s), want %v (%s)", name, got, f.Encoding, want, c.encoding)
		}
		if len(f.SHA256) != 64 {
			t.Errorf("%s: sha256 %q", name, f.SHA256)
		}
	}
}

// A CSV that does not parse is a RowError at its line and column.
func TestCSVParseErrorHasItsLine(t *testing.T) {
	f, err := Open(write(t, "bad.csv", []byte("a,b\n1,2\n3,\"4\n")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Header()
	f.Next()
	_, _, err = f.Next()
	var re *syncproto.RowError
	if !errors.As(err, &re) || re.Line != 3 {
		t.Fatalf("err = %v, want a RowError at line 3", err)
	}
}

// An XLSX's first sheet, row by row.
func TestXLSX(t *testing.T) {
	book := excelize.NewFile()
	sw, err := book.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range [][]any{{"户编号", "村", "户主姓名", "家庭人口"}, {"R1", "500240107201", "谭明华", 4}, {"R2", "500240107201", "冉秀英", 3}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, row); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "list.xlsx")
	if err := book.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	f, got := readAll(t, p)
	want := []string{"户编号|村|户主姓名|家庭人口", "2: R1|500240107201|谭明华|4", "3: R2|500240107201|冉秀英|3"}
	if !slices.Equal(got, want) || f.Format != "xlsx" {
		t.Errorf("xlsx: %v, want %v", got, want)
	}
}
