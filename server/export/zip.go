package export

import (
	"archive/zip"
	"compress/flate"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sort"
)

// orderedZip is the zip writer excelize writes a workbook through. Excelize
// creates the entries of streamed sheets in map order, so the same workbook
// came out as different files; orderedZip compresses each entry as it is
// written into a temporary spool file and, on Close, writes the entries to
// the output sorted by name, with no modification times: the same workbook
// is then the same bytes. The spool keeps memory bounded however large the
// sheets; it is removed on Close.
type orderedZip struct {
	out     io.Writer
	spool   *os.File
	entries []*orderedZipEntry
	open    *orderedZipEntry
	err     error
}

// orderedZipEntry is one entry of the spool: where its compressed bytes lie
// and what its header needs.
type orderedZipEntry struct {
	z                *orderedZip
	name             string
	offset, size     int64 // of the compressed bytes in the spool
	uncompressed     int64
	crc              hash.Hash32
	fw               *flate.Writer
	compressedWriter countingWriter
}

// countingWriter counts what passes to the spool.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newOrderedZip(out io.Writer) *orderedZip {
	z := &orderedZip{out: out}
	z.spool, z.err = os.CreateTemp("", "fieldsync-xlsx-*.spool")
	return z
}

// Create starts an entry; the one before it is finished.
func (z *orderedZip) Create(name string) (io.Writer, error) {
	if err := z.finishOpen(); err != nil {
		return nil, err
	}
	e := &orderedZipEntry{z: z, name: name, crc: crc32.NewIEEE()}
	e.compressedWriter.w = z.spool
	fw, err := flate.NewWriter(&e.compressedWriter, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	e.fw = fw
	z.entries = append(z.entries, e)
	z.open = e
	return e, nil
}

func (e *orderedZipEntry) Write(p []byte) (int, error) {
	if e.z.err != nil {
		return 0, e.z.err
	}
	n, err := e.fw.Write(p)
	e.crc.Write(p[:n])
	e.uncompressed += int64(n)
	return n, err
}

func (z *orderedZip) finishOpen() error {
	if z.err != nil {
		return z.err
	}
	e := z.open
	if e == nil {
		return nil
	}
	z.open = nil
	if z.err = e.fw.Close(); z.err != nil {
		return z.err
	}
	e.size = e.compressedWriter.n
	for _, prev := range z.entries[:len(z.entries)-1] {
		e.offset += prev.size
	}
	return nil
}

// AddFS is not used by the workbooks fieldsync writes.
func (z *orderedZip) AddFS(fs.FS) error { return fs.ErrInvalid }

// Close writes the entries, sorted by name, to the output and removes the
// spool.
func (z *orderedZip) Close() error {
	err := z.finishOpen()
	if z.spool != nil {
		defer func() {
			name := z.spool.Name()
			_ = z.spool.Close()
			_ = os.Remove(name)
		}()
	}
	if err != nil {
		return err
	}
	sort.SliceStable(z.entries, func(i, j int) bool { return z.entries[i].name < z.entries[j].name })
	zw := zip.NewWriter(z.out)
	for _, e := range z.entries {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CRC32: e.crc.Sum32(),
			CompressedSize64: uint64(e.size), UncompressedSize64: uint64(e.uncompressed)})
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, io.NewSectionReader(z.spool, e.offset, e.size)); err != nil {
			return err
		}
	}
	return zw.Close()
}
