// Package tabular reads the tables other departments' systems export, as
// files: CSV (UTF-8 with or without a byte-order mark, or GBK/GB18030, as
// Chinese government systems write it; comma- or tab-separated) and XLSX
// (the first sheet, streamed row by row). A File is a syncproto.Table with
// the SHA-256 of the file's bytes, which an import compares with the
// source's latest.
package tabular

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/fieldsync/fieldsync/syncproto"
)

// File is an open table file. Close it when done.
type File struct {
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string
	// Format is "csv" or "xlsx"; Encoding, for a CSV, "utf-8" or "gb18030".
	Format, Encoding string

	os    *os.File
	csv   *csv.Reader
	book  *excelize.File
	rows  *excelize.Rows
	line  int
	first bool
}

var _ syncproto.Table = (*File)(nil)

// sniffSize is how much of a CSV is looked at to tell UTF-8 from GB18030
// and commas from tabs.
const sniffSize = 64 << 10

// Open opens the file at path as a table: an XLSX when it starts as a zip
// archive does, else a CSV. It reads the file once to hash it.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, err
	}
	t := &File{SHA256: hex.EncodeToString(h.Sum(nil)), os: f, first: true}
	magic := make([]byte, 4)
	n, _ := f.ReadAt(magic, 0)
	if n == 4 && bytes.Equal(magic, []byte("PK\x03\x04")) {
		t.Format = "xlsx"
		book, err := excelize.OpenFile(path)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("not a readable XLSX workbook: %w", err)
		}
		t.book = book
		sheets := book.GetSheetList()
		if len(sheets) == 0 {
			t.Close()
			return nil, errors.New("the workbook has no sheet")
		}
		if t.rows, err = book.Rows(sheets[0]); err != nil {
			t.Close()
			return nil, fmt.Errorf("sheet %s: %w", sheets[0], err)
		}
		return t, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	t.Format, t.Encoding = "csv", "utf-8"
	br := bufio.NewReaderSize(f, sniffSize)
	peek, _ := br.Peek(sniffSize)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(peek, []byte("\xef\xbb\xbf")):
		br.Discard(3)
		peek = peek[3:]
	case !validPrefix(peek):
		t.Encoding = "gb18030"
		r = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
	}
	t.csv = csv.NewReader(r)
	t.csv.FieldsPerRecord = -1
	t.csv.ReuseRecord = true
	if first, _, _ := bytes.Cut(peek, []byte("\n")); bytes.Count(first, []byte("\t")) > 0 && bytes.Count(first, []byte(",")) == 0 {
		t.csv.Comma = '\t'
	}
	return t, nil
}

// validPrefix reports whether b is UTF-8 but for a rune cut at its end.
func validPrefix(b []byte) bool {
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

// Header returns the first row (syncproto.Table).
func (t *File) Header() ([]string, error) {
	if !t.first {
		return nil, errors.New("tabular: Header after Next")
	}
	t.first = false
	_, cells, err := t.next()
	return append([]string(nil), cells...), err
}

// Next returns the next row and its line (syncproto.Table); a CSV that
// cannot be parsed is a *syncproto.RowError at its line and column.
func (t *File) Next() (int, []string, error) {
	t.first = false
	return t.next()
}

func (t *File) next() (int, []string, error) {
	if t.rows != nil {
		if !t.rows.Next() {
			if err := t.rows.Error(); err != nil {
				return 0, nil, err
			}
			return 0, nil, io.EOF
		}
		t.line++
		cells, err := t.rows.Columns()
		return t.line, cells, err
	}
	cells, err := t.csv.Read()
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return 0, nil, &syncproto.RowError{Line: pe.Line, Column: pe.Column, Message: pe.Err.Error()}
	}
	if err != nil {
		return 0, nil, err
	}
	line, _ := t.csv.FieldPos(0)
	return line, cells, nil
}

// Close releases the file (and an XLSX's temporary files).
func (t *File) Close() error {
	var errs []error
	if t.rows != nil {
		errs = append(errs, t.rows.Close())
	}
	if t.book != nil {
		errs = append(errs, t.book.Close())
	}
	return errors.Join(append(errs, t.os.Close())...)
}
