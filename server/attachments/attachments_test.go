package attachments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// testPhoto is a PNG of random pixels (so that every seed has its own
// digest), about 4·side² bytes.
func testPhoto(tb testing.TB, seed uint64, side int) ([]byte, string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
	}
	img.Set(0, 0, color.NRGBA{A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}

func mustOpen(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "attachments"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func code(err error) syncproto.Code {
	if err == nil {
		return ""
	}
	var se *syncproto.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return "not a syncproto error: " + syncproto.Code(err.Error())
}

func offsetOf(err error) int64 {
	var se *syncproto.Error
	if errors.As(err, &se) && se.PhotoBytesHeld != nil {
		return *se.PhotoBytesHeld
	}
	return -1
}

// cutReader yields its bytes, then fails as a broken connection does.
type cutReader struct {
	r io.Reader
}

func (c cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestSniff(t *testing.T) {
	ftyp := func(major string, compat ...string) []byte {
		b := []byte{0, 0, 0, byte(16 + 4*len(compat))}
		b = append(b, "ftyp"+major+"\x00\x00\x00\x00"...)
		for _, c := range compat {
			b = append(b, c...)
		}
		return append(b, make([]byte, 40)...)
	}
	photo, _ := testPhoto(t, 1, 4)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, "image/jpeg"},
		{"png", photo, "image/png"},
		{"webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), "image/webp"},
		{"heic", ftyp("heic", "mif1", "heic"), "image/heic"},
		{"heif general with heic brand", ftyp("mif1", "heic"), "image/heic"},
		{"heif general", ftyp("mif1", "miaf"), "image/heif"},
		{"avif", ftyp("avif", "mif1", "miaf"), ""},
		{"avif as mif1", ftyp("mif1", "avif"), ""},
		{"mp4 video", ftyp("isom", "iso2", "mp41"), ""},
		{"text", []byte("hello, this is not a photo at all"), ""},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3"), ""},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ""},
		{"riff wave", []byte("RIFF\x10\x00\x00\x00WAVEfmt "), ""},
		{"empty", nil, ""},
		{"two bytes of jpeg", []byte{0xFF, 0xD8}, ""},
	}
	for _, c := range cases {
		if got := Sniff(c.b); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// upload sends photo to s as uploader in chunks of about chunk bytes,
// from the held offset, and returns the last result.
func upload(tb testing.TB, s *Store, hash, uploader string, photo []byte, chunk int) Result {
	tb.Helper()
	for {
		held, err := s.Held(hash, Uploader{User: uploader}, true)
		if err != nil {
			tb.Fatal(err)
		}
		if held.Complete {
			return Result{Offset: held.Offset, Complete: true}
		}
		end := min(held.Offset+int64(chunk), int64(len(photo))) - 1
		res, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: uploader}, CanRead: true, Start: held.Offset, End: end,
			Total: int64(len(photo)), Body: bytes.NewReader(photo[held.Offset : end+1])})
		if code(err) == syncproto.EConflict {
			continue
		}
		if err != nil {
			tb.Fatalf("chunk %d-%d: %v", held.Offset, end, err)
		}
		if res.Complete {
			return res
		}
	}
}

// TestWriteResumesAfterCuts cuts an upload at random offsets; each time
// Held tells where it stands, and the upload resumes from there to a
// stored file with the right digest.
func TestWriteResumesAfterCuts(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		photo, hash := testPhoto(t, seed, 120)
		s := mustOpen(t, Options{})
		rng := rand.New(rand.NewPCG(seed, 7))
		cuts := 0
		for {
			held, err := s.Held(hash, Uploader{User: "tablet"}, true)
			if err != nil {
				t.Fatal(err)
			}
			if held.Complete {
				break
			}
			total := int64(len(photo))
			// The tablet sends the rest in one chunk; the link breaks after
			// a random number of its bytes (or not, the last time).
			rest := photo[held.Offset:]
			var body io.Reader = bytes.NewReader(rest)
			cut := int64(len(rest))
			if cuts < 6 {
				cut = rng.Int64N(int64(len(rest)))
				body = cutReader{io.LimitReader(bytes.NewReader(rest), cut)}
			}
			res, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: "tablet"}, CanRead: true, Start: held.Offset,
				End: total - 1, Total: total, Body: body})
			if cuts < 6 {
				cuts++
				if code(err) != syncproto.EMalformed || offsetOf(err) != held.Offset+cut {
					t.Fatalf("seed %d: cut after %d bytes from %d: %v (offset %d)", seed, cut, held.Offset, err, offsetOf(err))
				}
				if h, _ := s.Held(hash, Uploader{User: "tablet"}, true); h.Offset != held.Offset+cut || h.Complete {
					t.Fatalf("seed %d: held %+v after a cut at %d", seed, h, held.Offset+cut)
				}
				if _, err := os.Stat(PhotoPath(s.Dir(), hash)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("seed %d: a photo appeared before its last byte: %v", seed, err)
				}
				continue
			}
			if err != nil || !res.Complete || !res.Created || res.ContentType != "image/png" || res.Offset != total {
				t.Fatalf("seed %d: last chunk: %+v %v", seed, res, err)
			}
		}
		got, err := os.ReadFile(PhotoPath(s.Dir(), hash))
		if err != nil || !bytes.Equal(got, photo) {
			t.Fatalf("seed %d: stored photo differs (%v)", seed, err)
		}
		if st, _ := s.Stats(); st.Photos != 1 || st.Bytes != int64(len(photo)) || st.Partials != 0 {
			t.Fatalf("seed %d: stats %+v", seed, st)
		}
	}
}

func TestWriteDiscardsWhatDoesNotMatch(t *testing.T) {
	photo, hash := testPhoto(t, 2, 64)
	s := mustOpen(t, Options{})
	bad := bytes.Clone(photo)
	bad[len(bad)/2] ^= 0x40
	total := int64(len(bad))
	half := total / 2
	if _, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: "u"}, CanRead: true, Start: 0, End: half - 1, Total: total,
		Body: bytes.NewReader(bad[:half])}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: "u"}, CanRead: true, Start: half, End: total - 1, Total: total,
		Body: bytes.NewReader(bad[half:])})
	if code(err) != syncproto.EInvalid || offsetOf(err) != 0 {
		t.Fatalf("corrupted upload: %v", err)
	}
	if h, _ := s.Held(hash, Uploader{User: "u"}, true); h.Offset != 0 || h.Complete {
		t.Fatalf("held after a mismatch: %+v", h)
	}
	if st, _ := s.Stats(); st.Photos != 0 || st.Partials != 0 {
		t.Fatalf("kept after a mismatch: %+v", st)
	}
}

func TestWriteRefuses(t *testing.T) {
	photo, hash := testPhoto(t, 3, 32)
	s := mustOpen(t, Options{MaxBytes: 8192})
	total := int64(len(photo))
	text := []byte(strings.Repeat("not a photo ", 100))
	textSum := sha256.Sum256(text)
	textHash := hex.EncodeToString(textSum[:])
	cases := []struct {
		name string
		ch   Chunk
		want syncproto.Code
	}{
		{"too large", Chunk{SHA256: hash, Start: 0, End: 9, Total: 8193, Body: bytes.NewReader(photo[:10])}, syncproto.ETooLarge},
		{"not an image, first chunk", Chunk{SHA256: textHash, Start: 0, End: 99, Total: int64(len(text)), Body: bytes.NewReader(text[:100])}, syncproto.EUnsupported},
		{"wrong start", Chunk{SHA256: hash, Start: 10, End: 19, Total: total, Body: bytes.NewReader(photo[10:20])}, syncproto.EConflict},
		{"end beyond total", Chunk{SHA256: hash, Start: 0, End: total, Total: total, Body: bytes.NewReader(photo)}, syncproto.EMalformed},
		{"path-like hash", Chunk{SHA256: "../../etc/passwd", Start: 0, End: 0, Total: 1, Body: bytes.NewReader(photo[:1])}, syncproto.EMalformed},
		{"upper-case hash", Chunk{SHA256: strings.ToUpper(hash), Start: 0, End: 0, Total: 1, Body: bytes.NewReader(photo[:1])}, syncproto.EMalformed},
		{"body longer than its range", Chunk{SHA256: hash, Start: 0, End: 9, Total: total, Body: bytes.NewReader(photo[:11])}, syncproto.EMalformed},
	}
	for _, c := range cases {
		_, err := s.Write(context.Background(), c.ch)
		if code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	if h, _ := s.Held(textHash, Uploader{User: ""}, true); h.Offset != 0 {
		t.Fatalf("a non-image was kept: %+v", h)
	}
	// A first chunk too short to judge is kept; the next one decides.
	if _, err := s.Write(context.Background(), Chunk{SHA256: textHash, Uploader: Uploader{User: "v"}, CanRead: true, Start: 0, End: 3, Total: int64(len(text)),
		Body: bytes.NewReader(text[:4])}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Write(context.Background(), Chunk{SHA256: textHash, Uploader: Uploader{User: "v"}, CanRead: true, Start: 4, End: 199, Total: int64(len(text)),
		Body: bytes.NewReader(text[4:200])})
	if code(err) != syncproto.EUnsupported {
		t.Fatalf("non-image second chunk: %v", err)
	}
	if h, _ := s.Held(textHash, Uploader{User: "v"}, true); h.Offset != 0 {
		t.Fatalf("a non-image was kept: %+v", h)
	}
}

// TestConcurrentUploadersStoreOnce: tablets uploading the same photo at
// once each write their own partial; the first to finish stores it, the
// others find it whole, and all succeed.
func TestConcurrentUploadersStoreOnce(t *testing.T) {
	photo, hash := testPhoto(t, 4, 100)
	s := mustOpen(t, Options{})
	var wg sync.WaitGroup
	results := make([]Result, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = upload(t, s, hash, string(rune('a'+i)), photo, 1000+i*700)
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if !r.Complete || r.Offset != int64(len(photo)) {
			t.Fatalf("an uploader did not finish: %+v", results)
		}
		if r.Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d uploads created the photo, want 1", created)
	}
	if st, _ := s.Stats(); st.Photos != 1 || st.Partials != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNewerChunkPreemptsAStuckOne: a chunk whose connection hangs is cut
// when the same tablet resumes, and the resumed chunk goes on.
func TestNewerChunkPreemptsAStuckOne(t *testing.T) {
	photo, hash := testPhoto(t, 5, 64)
	s := mustOpen(t, Options{LockWait: 5 * time.Second})
	total := int64(len(photo))
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: "u"}, CanRead: true, Start: 0, End: total - 1, Total: total,
			Body: pr, Preempt: func() { pw.CloseWithError(errors.New("read deadline")) }})
		done <- err
	}()
	if _, err := pw.Write(photo[:100]); err != nil {
		t.Fatal(err)
	}
	// The stuck request holds 100 bytes; the tablet asks and resumes.
	var res Result
	var err error
	for range 100 {
		res, err = s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: "u"}, CanRead: true, Start: 100, End: total - 1, Total: total,
			Body: bytes.NewReader(photo[100:])})
		if code(err) != syncproto.EConflict {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || !res.Created {
		t.Fatalf("resumed chunk: %+v %v", res, err)
	}
	if err := <-done; code(err) != syncproto.EMalformed {
		t.Fatalf("stuck chunk: %v", err)
	}
}

func TestSweepRemovesOldPartials(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := mustOpen(t, Options{Now: clock})
	photo, hash := testPhoto(t, 6, 32)
	for _, u := range []string{"old", "new"} {
		if _, err := s.Write(context.Background(), Chunk{SHA256: hash, Uploader: Uploader{User: u}, CanRead: true, Start: 0, End: 99, Total: int64(len(photo)),
			Body: bytes.NewReader(photo[:100])}); err != nil {
			t.Fatal(err)
		}
	}
	old := now.Add(-8 * 24 * time.Hour)
	if err := os.Chtimes(s.partialPath(hash, Uploader{User: "old"}), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(s.partialPath(hash, Uploader{User: "new"}), now.Add(-time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Partials != 2 || st.PartialBytes != 200 {
		t.Fatalf("stats before the sweep: %+v", st)
	}
	removed, n, err := s.Sweep(DefaultOrphanAge)
	if err != nil || removed != 1 || n != 100 {
		t.Fatalf("sweep: %d %d %v", removed, n, err)
	}
	if h, _ := s.Held(hash, Uploader{User: "old"}, true); h.Offset != 0 {
		t.Fatalf("old partial kept: %+v", h)
	}
	if h, _ := s.Held(hash, Uploader{User: "new"}, true); h.Offset != 100 {
		t.Fatalf("recent partial removed: %+v", h)
	}
}

func TestOpenCountsAndInstallVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "attachments")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	photo, hash := testPhoto(t, 7, 40)
	upload(t, s, hash, "u", photo, 500)
	other, otherHash := testPhoto(t, 8, 40)
	if wrote, err := Install(dir, otherHash, bytes.NewReader(other)); err != nil || !wrote {
		t.Fatalf("install: %v %v", wrote, err)
	}
	if wrote, err := Install(dir, otherHash, bytes.NewReader(other)); err != nil || wrote {
		t.Fatalf("install again: %v %v", wrote, err)
	}
	_, thirdHash := testPhoto(t, 9, 40)
	if _, err := Install(dir, thirdHash, bytes.NewReader(other)); err == nil {
		t.Fatal("install of bytes that do not match their name succeeded")
	}
	if _, err := os.Stat(PhotoPath(dir, thirdHash)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a mismatched install left a photo: %v", err)
	}
	again, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := again.Stats(); st.Photos != 2 || st.Bytes != int64(len(photo)+len(other)) || st.Partials != 0 {
		t.Fatalf("stats after reopening: %+v", st)
	}
}
