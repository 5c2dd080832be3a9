package syncproto

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Checksum summarises a set of records by their (id, version): a count and
// four sums of 32-bit words taken from SHA-256(id, version). Sums make it
// incremental — a new version subtracts the old digest and adds the new
// one, a record that moves between villages moves its digest — and
// independent of order, so the server keeps one per village and adds up
// the villages of a scope, and a tablet computes the same over its copy.
//
// The sums are plain integers: below 2^31 records they cannot overflow an
// int64 (which keeps them summable in SQL); the wire form takes each sum
// modulo 2^32, 128 bits in all.
type Checksum struct {
	Count int64
	Sums  [4]int64
}

// RecordDigest is the four 32-bit words that a record at a version
// contributes to a checksum.
func RecordDigest(id string, version int64) [4]int64 {
	h := sha256.New()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, version, 10))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var d [4]int64
	for i := range d {
		d[i] = int64(binary.BigEndian.Uint32(sum[4*i:]))
	}
	return d
}

// Add counts the record at the version in.
func (c *Checksum) Add(id string, version int64) { c.add(RecordDigest(id, version), 1) }

// Remove takes the record at the version out.
func (c *Checksum) Remove(id string, version int64) { c.add(RecordDigest(id, version), -1) }

func (c *Checksum) add(d [4]int64, sign int64) {
	c.Count += sign
	for i := range d {
		c.Sums[i] += sign * d[i]
	}
}

// String is the wire form: 32 hex digits.
func (c Checksum) String() string {
	var b [16]byte
	for i, s := range c.Sums {
		binary.BigEndian.PutUint32(b[4*i:], uint32(s))
	}
	return fmt.Sprintf("%x", b)
}

// ChecksumResponse is the answer of GET /v1/sync/checksum: the checksum of
// the caller's scope as of the cursor (a pull cursor at the head of the
// change log when it was computed).
type ChecksumResponse struct {
	Cursor   string `json:"cursor"`
	Count    int64  `json:"count"`
	Checksum string `json:"checksum"`
}
