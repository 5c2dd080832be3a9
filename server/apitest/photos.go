package apitest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// PhotoPNG is a PNG of random pixels, about 4·side² bytes, and its Digest;
// each seed makes another photo.
func PhotoPNG(tb testing.TB, seed uint64, side int) ([]byte, string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 2026))
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), Digest(buf.Bytes())
}

// Digest is the lowercase hexadecimal SHA-256 of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PhotoClient speaks the attachment endpoints of one server as one tablet.
type PhotoClient struct {
	url, token string
	client     *http.Client
}

// status asks HEAD /v1/attachments/{hash}: the offset held and whether
// the photo is complete.
func (pc *PhotoClient) Status(tb testing.TB, hash string) (int64, bool) {
	tb.Helper()
	resp, _, err := pc.Request(http.MethodHead, "/v1/attachments/"+hash, nil, -1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("HEAD %s: %d", hash, resp.StatusCode)
	}
	return UploadOffset(tb, resp), resp.Header.Get("Upload-Complete") == "?1"
}

// UploadOffset reads the Upload-Offset header, failing the test without it.
func UploadOffset(tb testing.TB, resp *http.Response) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		tb.Fatalf("Upload-Offset %q on %d", resp.Header.Get("Upload-Offset"), resp.StatusCode)
	}
	return n
}

// request sends a request with a body of length bytes (-1: none) and
// extra headers; it returns the response and its body, or the transport's
// error.
func (pc *PhotoClient) Request(method, path string, body io.Reader, length int64, header map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, pc.url+path, body)
	if err != nil {
		return nil, nil, err
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if pc.token != "" {
		req.Header.Set("Authorization", "Bearer "+pc.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := pc.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// put sends bytes start..start+len(chunk)-1 of a photo of total bytes.
func (pc *PhotoClient) Put(hash string, start, total int64, body io.Reader, length int64) (*http.Response, []byte, error) {
	return pc.Request(http.MethodPut, "/v1/attachments/"+hash, body, length, map[string]string{
		"Content-Range": fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, total),
		"Content-Type":  "application/octet-stream"})
}

// upload sends a photo in chunks of chunk bytes from where the server
// stands, following Upload-Offset after a 409, until it is whole; it
// returns the final status (201 or 200).
func (pc *PhotoClient) Upload(tb testing.TB, hash string, photo []byte, chunk int) int {
	tb.Helper()
	total := int64(len(photo))
	offset, complete := pc.Status(tb, hash)
	for attempt := 0; attempt < 10000; attempt++ {
		if complete {
			return http.StatusOK
		}
		if offset >= total {
			// Every byte held but not checked (the server stopped
			// between them): the last chunk again, as docs/protocol.md says.
			offset = max(0, total-int64(chunk))
		}
		end := min(offset+int64(chunk), total)
		resp, body, err := pc.Put(hash, offset, total, bytes.NewReader(photo[offset:end]), end-offset)
		if err != nil {
			tb.Fatalf("PUT %d-%d: %v", offset, end-1, err)
		}
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			var ans struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			}
			if err := json.Unmarshal(body, &ans); err != nil || ans.SHA256 != hash || ans.Size != total {
				tb.Fatalf("answer %s", body)
			}
			return resp.StatusCode
		case http.StatusNoContent, http.StatusConflict:
			offset = UploadOffset(tb, resp)
			complete = resp.Header.Get("Upload-Complete") == "?1"
		default:
			tb.Fatalf("PUT %d-%d: %d %s", offset, end-1, resp.StatusCode, body)
		}
	}
	tb.Fatal("the upload does not end")
	return 0
}

// get downloads a photo as the client, with extra headers.
func (pc *PhotoClient) Get(tb testing.TB, hash string, header map[string]string) (*http.Response, []byte) {
	tb.Helper()
	resp, body, err := pc.Request(http.MethodGet, "/v1/attachments/"+hash, nil, -1, header)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// CutBody yields n bytes of b, then fails as a dropped link does.
type CutBody struct {
	R io.Reader
}

// Read reads from R and turns its end into a dropped link.
func (c *CutBody) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if err == io.EOF {
		return n, errors.New("the link dropped")
	}
	return n, err
}

// heldPhoto reads the file the store keeps for a Digest.
func (ts *Server) HeldPhoto(tb testing.TB, hash string) []byte {
	tb.Helper()
	b, err := os.ReadFile(attachments.PhotoPath(ts.Photos.Dir(), hash))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// PhotoStats are the photo store's figures.
func (ts *Server) PhotoStats(tb testing.TB) attachments.Stats {
	tb.Helper()
	st, err := ts.Photos.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// PhotoClient speaks the attachment endpoints as user on device.
func (ts *Server) PhotoClient(tb testing.TB, user, device string) *PhotoClient {
	return &PhotoClient{url: ts.URL, token: ts.Login(tb, user, device), client: ts.Client()}
}

// NewPhotoClient speaks the attachment endpoints at url with token (a
// bearer access token) through c.
func NewPhotoClient(url, token string, c *http.Client) *PhotoClient {
	return &PhotoClient{url: url, token: token, client: c}
}

// PushAs pushes changes as a photo client's user and device and fails the
// test unless every change applied.
func (ts *Server) PushAs(tb testing.TB, pc *PhotoClient, device string, seq int64, changes ...syncproto.Change) {
	tb.Helper()
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: seq, SchemaVersion: 1, Changes: changes}
	b, _ := json.Marshal(cs)
	resp, body := ts.DoAs(tb, pc.token, http.MethodPost, "/v1/sync/push", "application/json", b)
	mustAccept(tb, resp, body)
}

// AskMissing is POST /v1/attachments/missing as the client.
func (pc *PhotoClient) AskMissing(tb testing.TB, hashes ...string) []string {
	tb.Helper()
	b, _ := json.Marshal(map[string][]string{"hashes": hashes})
	resp, body, err := pc.Request(http.MethodPost, "/v1/attachments/missing", bytes.NewReader(b), int64(len(b)),
		map[string]string{"Content-Type": "application/json"})
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("missing: %v %d %s", err, resp.StatusCode, body)
	}
	var ans struct{ Missing []string }
	if err := json.Unmarshal(body, &ans); err != nil {
		tb.Fatal(err)
	}
	return ans.Missing
}
