package export

import (
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/syncproto"
)

// xlsxBook is the one XLSX writer of fieldsync: the snapshots' workbooks
// and the reports' are written through it. Each sheet is written with
// excelize's StreamWriter, which keeps a sheet in memory up to 16 MiB and
// spools the rest to a temporary file (removed by close), so memory stays
// bounded while rows are added; writeTo then zips the workbook straight
// into the output in entry-name order (orderedZip), so that the same rows
// are always the same bytes.
type xlsxBook struct {
	file   *excelize.File
	sheets []*xlsxSheet
}

// xlsxSheet is one sheet being written.
type xlsxSheet struct {
	name string
	sw   *excelize.StreamWriter
	rows int // rows written, the header included
}

// newXLSXBook starts a workbook with the named sheets, in that order, each
// with its header row, frozen.
func newXLSXBook(names []string, headers [][]string) (*xlsxBook, error) {
	b := &xlsxBook{file: excelize.NewFile()}
	for i, name := range names {
		var err error
		if i == 0 {
			err = b.file.SetSheetName(b.file.GetSheetName(0), name)
		} else {
			_, err = b.file.NewSheet(name)
		}
		if err != nil {
			return b, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
		// The stream writer writes the sheet's <dimension> before any row,
		// when the number of rows is unknown; a wrong "A1" makes readers
		// that trust it (openpyxl read-only) see an empty sheet. Without
		// the element, readers scan the rows.
		if err := b.file.SetSheetDimension(name, ""); err != nil {
			return b, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
		sw, err := b.file.NewStreamWriter(name)
		if err != nil {
			return b, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
		if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return b, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
		header := make([]any, len(headers[i]))
		for j, h := range headers[i] {
			header[j] = h
		}
		if err := sw.SetRow("A1", header); err != nil {
			return b, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
		b.sheets = append(b.sheets, &xlsxSheet{name: name, sw: sw, rows: 1})
	}
	return b, nil
}

// addRow writes the next row of sheet i: strings as text cells, numbers
// and booleans typed. A sheet holds at most 1,048,575 rows besides its
// header; one more is a 422 at query.format (use CSV).
func (b *xlsxBook) addRow(i int, cells []any) error {
	sh := b.sheets[i]
	if sh.rows >= excelize.TotalRows {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Too many rows for XLSX",
			Message: fmt.Sprintf("an XLSX sheet holds at most %d records; ask for a smaller region or for CSV", excelize.TotalRows-1),
			Errors:  []syncproto.FieldError{{Path: "query.format", Message: "is too small for this region"}}}
	}
	sh.rows++
	cell, err := excelize.CoordinatesToCellName(1, sh.rows)
	if err != nil {
		return err
	}
	return sh.sw.SetRow(cell, cells)
}

// writeTo finishes every sheet and writes the workbook to w.
func (b *xlsxBook) writeTo(w io.Writer) error {
	for _, sh := range b.sheets {
		if err := sh.sw.Flush(); err != nil {
			return fmt.Errorf("xlsx sheet %s: %w", sh.name, err)
		}
	}
	// WriteTo would zip the workbook into a buffer first; orderedZip spools
	// it to a file and then writes its entries in name order to w, so that
	// the same workbook is always the same bytes.
	b.file.SetZipWriter(func(io.Writer) excelize.ZipWriter { return newOrderedZip(w) })
	_, err := b.file.WriteTo(w)
	return err
}

// close releases the temporary files of the workbook.
func (b *xlsxBook) close() {
	if b != nil && b.file != nil {
		_ = b.file.Close()
	}
}
