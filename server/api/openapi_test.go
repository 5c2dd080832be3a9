package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// loadOpenAPI loads and validates the embedded document.
func loadOpenAPI(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument)
	if err != nil {
		tb.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

var registerDecoders sync.Once

// registerSnapshotDecoders teaches openapi3filter the media types of
// snapshots and photos: GeoJSON, NDJSON, XLSX and images are read as
// strings (the test checks GeoJSON against HouseholdCollection and NDJSON's
// lines itself).
func registerSnapshotDecoders() {
	registerDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/geo+json", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", openapi3filter.FileBodyDecoder)
		for _, t := range []string{"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"} {
			openapi3filter.RegisterBodyDecoder(t, openapi3filter.FileBodyDecoder)
		}
	})
}

// TestOpenAPIDocument: the document is valid OpenAPI 3, good for a client
// generator (every operation has a unique operationId, every schema of a
// JSON body is a named component, the bearer scheme is declared), and
// GET /v1/openapi.json serves it, without a token, byte for byte.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %s of %s is also %s's", op.OperationID, where, other)
			}
			ids[op.OperationID] = where
			if op.Summary == "" {
				t.Errorf("%s has no summary", where)
			}
			if op.RequestBody != nil {
				for mt, c := range op.RequestBody.Value.Content {
					if strings.HasSuffix(mt, "json") && c.Schema.Ref == "" {
						t.Errorf("%s: the request body is not a named schema", where)
					}
				}
			}
		}
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Scheme != "bearer" || s.Value.BearerFormat != "JWT" {
		t.Errorf("bearer JWT security scheme missing")
	}
	ts := apitest.MustServe(t)
	resp, body := ts.DoAs(t, "", http.MethodGet, "/v1/openapi.json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, api.OpenAPIDocument) {
		t.Fatalf("/v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// echoPathToOpenAPI writes an echo route's path as an OpenAPI path:
// :param is {param}; the photo routes' wildcard is {sha256}.
func echoPathToOpenAPI(p string) string {
	if strings.HasSuffix(p, "/attachments/*") {
		return strings.TrimSuffix(p, "*") + "{sha256}"
	}
	return regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(p, "{$1}")
}

// TestOpenAPICoversEveryRoute: every route echo serves is an operation of
// the document, and every operation of the document is a route.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	s := api.New(api.Config{Store: apitest.MustServe(t).Store})
	served := map[string]bool{}
	for _, r := range api.RoutesOf(s) {
		served[r.Method+" "+echoPathToOpenAPI(r.Path)] = true
	}
	var missing, extra []string
	for op := range served {
		if !documented[op] {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if !served[op] {
			extra = append(extra, op)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("operations in openapi.json that no route serves: %v", extra)
	}
	if len(served) < 29 {
		t.Errorf("only %d routes", len(served))
	}
}

// apiCall is one request of the contract test.
type apiCall struct {
	name        string
	method      string
	path        string // with the query
	token       string
	body        []byte
	contentType string
	header      map[string]string
	status      int
	// invalid marks a request that breaks the document on purpose: it is
	// not validated, its answer is.
	invalid bool
}

// contract sends requests to a real server and validates each answer
// against the document, counting the statuses seen per operation.
type contract struct {
	ts     *apitest.Server
	doc    *openapi3.T
	router routers.Router
	seen   map[string]map[int]bool // "METHOD /path/{template}" -> statuses answered
}

func newContract(tb testing.TB, ts *apitest.Server, doc *openapi3.T) *contract {
	tb.Helper()
	registerSnapshotDecoders()
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return &contract{ts: ts, doc: doc, router: router, seen: map[string]map[int]bool{}}
}

// call sends c to the server, checks its status, validates the request
// (unless c.invalid) and the answer (status, documented headers, body)
// against the document, and returns the answer.
func (k *contract) call(t *testing.T, c apiCall) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, k.ts.URL+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for h, v := range c.header {
		req.Header.Set(h, v)
	}
	resp, err := k.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", c.name, err)
	}
	if resp.StatusCode != c.status {
		t.Fatalf("%s: %s %s answered %d, want %d: %.400s", c.name, c.method, c.path, resp.StatusCode, c.status, body)
	}

	// The same request again, for the validator (the first one's body
	// was sent).
	vreq, _ := http.NewRequest(c.method, k.ts.URL+c.path, bytes.NewReader(c.body))
	vreq.Header = req.Header.Clone()
	route, params, err := k.router.FindRoute(vreq)
	if err != nil {
		t.Fatalf("%s: %s %s is not an operation of openapi.json: %v", c.name, c.method, c.path, err)
	}
	op := c.method + " " + route.Path
	if k.seen[op] == nil {
		k.seen[op] = map[int]bool{}
	}
	k.seen[op][resp.StatusCode] = true
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if !c.invalid {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s: the request does not match openapi.json (fix the test or the document): %v", c.name, err)
		}
	}
	if err := validateAnswer(in, resp.StatusCode, resp.Header, body); err != nil {
		t.Errorf("%s: %s %s: the answer %d does not match openapi.json: %v\n%.600s", c.name, c.method, c.path, resp.StatusCode, err, body)
	}
	if c.method == http.MethodHead { // ValidateResponse skips HEAD: check the documented headers here
		r := route.Operation.Responses.Status(resp.StatusCode)
		if r == nil {
			t.Errorf("%s: HEAD answered %d, which openapi.json does not document", c.name, resp.StatusCode)
		} else {
			for name, h := range r.Value.Headers {
				if h.Value.Required && resp.Header.Get(name) == "" {
					t.Errorf("%s: HEAD lacks the documented header %s", c.name, name)
				}
			}
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		if strings.HasPrefix(c.path, "/v1/reports/verification") {
			k.checkVerificationNDJSON(t, c.name, body)
		} else if strings.HasPrefix(c.path, "/v1/followups") {
			k.checkFollowupsNDJSON(t, c.name, body)
		} else {
			k.checkNDJSON(t, c.name, body)
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/geo+json") && resp.StatusCode == http.StatusOK {
		k.checkGeoJSON(t, c.name, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", c.name)
	}
	return resp, body
}

// validateAnswer validates an answer to the request of in against the
// document: an undocumented status is an error too.
func validateAnswer(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// TestOpenAPIValidationCatchesDrift: the validator the contract test uses
// is not vacuous. A real push answer passes; the same answer with a field
// renamed, a field added, a type changed, an undocumented status or a
// problem without its content type fails.
func TestOpenAPIValidationCatchesDrift(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := apitest.MustServe(t)
	k := newContract(t, ts, doc)
	resp, body := ts.PushJSON(t, apitest.ValidChangeset())
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/sync/push", bytes.NewReader(body))
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	if err := validateAnswer(in, 200, resp.Header, body); err != nil {
		t.Fatalf("the real answer fails: %v", err)
	}
	problemHeader := http.Header{"Content-Type": {"application/problem+json"}}
	drifts := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"a renamed field", 200, resp.Header, strings.Replace(string(body), `"replayed"`, `"is_replay"`, 1)},
		{"an added field", 200, resp.Header, strings.Replace(string(body), `"replayed"`, `"server":"x","replayed"`, 1)},
		{"a changed type", 200, resp.Header, strings.Replace(string(body), `"replayed":false`, `"replayed":"no"`, 1)},
		{"a result status out of the enum", 200, resp.Header, strings.Replace(string(body), `"status":"applied"`, `"status":"done"`, 1)},
		{"an undocumented status", 202, resp.Header, string(body)},
		{"a problem as plain JSON", 422, resp.Header, `{"type":"/problems/invalid","title":"x","status":422}`},
		{"a problem without its title", 422, problemHeader, `{"type":"/problems/invalid","status":422}`},
		{"a field error without its path", 422, problemHeader, `{"type":"/problems/invalid","title":"x","status":422,"errors":[{"message":"m"}]}`},
	}
	for _, d := range drifts {
		if err := validateAnswer(in, d.status, d.header, []byte(d.body)); err == nil {
			t.Errorf("%s: not detected", d.name)
		}
	}
}

// checkGeoJSON validates a GeoJSON snapshot as a HouseholdCollection (the
// document types it as a string for client generators).
func (k *contract) checkGeoJSON(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: GeoJSON: %v", name, err)
	}
	if err := k.doc.Components.Schemas["HouseholdCollection"].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
		t.Errorf("%s: not a HouseholdCollection: %v", name, err)
	}
}

// checkNDJSON validates each line of an NDJSON snapshot as a Record.
func (k *contract) checkNDJSON(t *testing.T, name string, body []byte) {
	t.Helper()
	schema := k.doc.Components.Schemas["Record"].Value
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: NDJSON line %d: %v", name, n+1, err)
		}
		if err := schema.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
			t.Errorf("%s: NDJSON line %d is not a Record: %v", name, n+1, err)
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s: an empty NDJSON snapshot", name)
	}
}

// checkCoverage fails for every operation of the document that the test
// did not see answer with success, or with one of its documented client
// errors.
func (k *contract) checkCoverage(t *testing.T) {
	t.Helper()
	for path, item := range k.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := k.seen[method+" "+path]
			var success, clientError, documentsClientError bool
			for code := range seen {
				success = success || (code >= 200 && code < 300)
				clientError = clientError || (code >= 400 && code < 500)
			}
			for code := range op.Responses.Map() {
				documentsClientError = documentsClientError || strings.HasPrefix(code, "4")
			}
			if !success {
				t.Errorf("%s %s: no successful answer was validated", method, path)
			}
			if documentsClientError && !clientError {
				t.Errorf("%s %s: no error answer was validated", method, path)
			}
		}
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decodeInto(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%v: %s", err, b)
	}
}

// TestOpenAPIResponses drives every operation of the document through the
// real handlers over real HTTP (a real SQLite file, a real photo store):
// successes with data behind them, and the errors a client can cause.
// Each answer — status, documented headers, body — is validated against
// openapi.json, so the test fails as soon as a handler's answer and the
// document part ways; and it fails if an operation went unexercised.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := apitest.MustServe(t)
	k := newContract(t, ts, doc)
	ctx := context.Background()

	ts.AddUser(t, "sup.shizhu", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	ts.AddUser(t, "worker.xituo", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "worker.two", syncproto.RoleFieldWorker, "500240107")
	workerDevice, otherDevice := uuid.NewString(), uuid.NewString()
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	sup := ts.Login(t, "sup.shizhu", uuid.NewString())
	far := ts.Login(t, "sup.bairin", uuid.NewString())
	json := "application/json"

	// Service.
	k.call(t, apiCall{name: "healthz", method: "GET", path: "/healthz", status: 200})
	k.call(t, apiCall{name: "readyz", method: "GET", path: "/readyz", status: 200})
	k.call(t, apiCall{name: "metrics", method: "GET", path: "/metrics", status: 200})
	k.call(t, apiCall{name: "openapi", method: "GET", path: "/v1/openapi.json", status: 200})
	k.call(t, apiCall{name: "openapi with a parameter", method: "GET", path: "/v1/openapi.json?v=2", status: 400, invalid: true})

	// Auth.
	login := func(user, password, device string) []byte {
		return mustJSON(t, map[string]string{"username": user, "password": password, "device_id": device})
	}
	_, body := k.call(t, apiCall{name: "login", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("worker.xituo", apitest.TestPassword, workerDevice), status: 200})
	var pair api.TokenResponse
	decodeInto(t, body, &pair)
	worker := pair.AccessToken
	k.call(t, apiCall{name: "login, wrong password", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("worker.xituo", "not the password", workerDevice), status: 401})
	k.call(t, apiCall{name: "login, not JSON", method: "POST", path: "/v1/auth/token", contentType: json,
		body: []byte(`{"username": `), status: 400, invalid: true})
	k.call(t, apiCall{name: "login, no device", method: "POST", path: "/v1/auth/token", contentType: json,
		body: []byte(`{"username": "x", "password": "y", "device_id": ""}`), status: 422, invalid: true})
	k.call(t, apiCall{name: "login, another user's device", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("worker.two", apitest.TestPassword, workerDevice), status: 403})
	k.call(t, apiCall{name: "login, too large", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("worker.xituo", strings.Repeat("x", 20000), workerDevice), status: 413, invalid: true})
	_, body = k.call(t, apiCall{name: "refresh", method: "POST", path: "/v1/auth/refresh", contentType: json,
		body: mustJSON(t, map[string]string{"refresh_token": pair.RefreshToken}), status: 200})
	var pair2 api.TokenResponse
	decodeInto(t, body, &pair2)
	worker = pair2.AccessToken
	k.call(t, apiCall{name: "refresh, not JSON", method: "POST", path: "/v1/auth/refresh", contentType: json, body: []byte(`[]`), status: 400, invalid: true})
	k.call(t, apiCall{name: "refresh, too large", method: "POST", path: "/v1/auth/refresh", contentType: json,
		body: mustJSON(t, map[string]string{"refresh_token": strings.Repeat("x", 20000)}), status: 413})
	// A server with its rate limits: the sixth login for one name is a 429.
	limited := apitest.MustServeWith(t, &api.DefaultRateLimits)
	lk := newContract(t, limited, doc)
	for i := 0; i < 5; i++ {
		lk.call(t, apiCall{name: "login, limited", method: "POST", path: "/v1/auth/token", contentType: json,
			body: login("admin", "wrong password", uuid.NewString()), status: 401})
	}
	lk.call(t, apiCall{name: "login, rate limited", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("admin", "wrong password", uuid.NewString()), status: 429})
	// Every password check of the process taken: 503 with Retry-After.
	gate := auth.NewHashGate(1, 4, 10*time.Millisecond)
	gated := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.HashGate = gate })
	release, _, _ := gate.Enter(ctx, "held by the test")
	newContract(t, gated, doc).call(t, apiCall{name: "login, every password check busy", method: "POST", path: "/v1/auth/token",
		contentType: json, body: login("admin", apitest.TestPassword, uuid.NewString()), status: 503})
	release()
	// The refresh token used a second time, past the grace for a lost
	// answer: 401, and the session ends.
	ts.Clock.Advance(2 * auth.RefreshGrace)
	k.call(t, apiCall{name: "refresh, reused", method: "POST", path: "/v1/auth/refresh", contentType: json,
		body: mustJSON(t, map[string]string{"refresh_token": pair.RefreshToken}), status: 401})
	_, body = k.call(t, apiCall{name: "login again", method: "POST", path: "/v1/auth/token", contentType: json,
		body: login("worker.xituo", apitest.TestPassword, workerDevice), status: 200})
	decodeInto(t, body, &pair)
	worker = pair.AccessToken
	named := mustJSON(t, map[string]string{"username": "worker.xituo", "password": apitest.TestPassword, "device_id": workerDevice, "device_name": "西沱镇 1"})
	k.call(t, apiCall{name: "login with a device name", method: "POST", path: "/v1/auth/token", contentType: json, body: named, status: 200})
	k.call(t, apiCall{name: "login, device name too long", method: "POST", path: "/v1/auth/token", contentType: json,
		body: mustJSON(t, map[string]string{"username": "worker.xituo", "password": apitest.TestPassword, "device_id": workerDevice,
			"device_name": strings.Repeat("x", 65)}), status: 422, invalid: true})

	// Schema.
	k.call(t, apiCall{name: "schema", method: "GET", path: "/v1/schema", token: worker, status: 200})
	k.call(t, apiCall{name: "schema without token", method: "GET", path: "/v1/schema", status: 401})
	k.call(t, apiCall{name: "schema, unknown parameter", method: "GET", path: "/v1/schema?all=1", token: worker, status: 400, invalid: true})

	// Photos: one uploaded in two chunks, one referenced but never uploaded.
	photo, hash := apitest.PhotoPNG(t, 1, 24)
	_, lost := apitest.PhotoPNG(t, 2, 8)
	put := func(name string, hash string, start, end, total int, chunk []byte, status int, invalid bool) {
		k.call(t, apiCall{name: name, method: "PUT", path: "/v1/attachments/" + hash, token: worker, body: chunk,
			contentType: "application/octet-stream", header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", start, end, total)},
			status: status, invalid: invalid})
	}
	k.call(t, apiCall{name: "missing photos", method: "POST", path: "/v1/attachments/missing", token: worker, contentType: json,
		body: mustJSON(t, map[string][]string{"hashes": {hash, lost, hash}}), status: 200})
	k.call(t, apiCall{name: "missing photos, not strings", method: "POST", path: "/v1/attachments/missing", token: worker, contentType: json,
		body: []byte(`{"hashes": [1, 2]}`), status: 400, invalid: true})
	k.call(t, apiCall{name: "missing photos, not digests", method: "POST", path: "/v1/attachments/missing", token: worker, contentType: json,
		body: []byte(`{"hashes": ["abc"]}`), status: 422, invalid: true})
	many := make([]string, syncproto.MaxMissingHashes+1)
	for i := range many {
		many[i] = hash
	}
	k.call(t, apiCall{name: "missing photos, too many", method: "POST", path: "/v1/attachments/missing", token: worker, contentType: json,
		body: mustJSON(t, map[string][]string{"hashes": many}), status: 413, invalid: true})
	k.call(t, apiCall{name: "missing photos without token", method: "POST", path: "/v1/attachments/missing", contentType: json,
		body: []byte(`{"hashes": []}`), status: 401})
	half := len(photo) / 2
	put("upload, first chunk", hash, 0, half-1, len(photo), photo[:half], 204, false)
	k.call(t, apiCall{name: "upload status", method: "HEAD", path: "/v1/attachments/" + hash, token: worker, status: 200})
	k.call(t, apiCall{name: "upload status, bad hash", method: "HEAD", path: "/v1/attachments/xyz", token: worker, status: 400, invalid: true})
	put("upload, wrong start", hash, 0, 9, len(photo), photo[:10], 409, false)
	put("upload, bad range", hash, 9, 0, len(photo), nil, 400, true)
	put("upload, too large", lost, 0, 9, 1<<30, photo[:10], 413, false)
	text := []byte(strings.Repeat("not a photo ", 20))
	put("upload, not an image", apitest.Digest(text), 0, len(text)-1, len(text), text, 415, false)
	put("upload, wrong bytes", lost, 0, len(photo)-1, len(photo), photo, 422, false)
	put("upload, last chunk", hash, half, len(photo)-1, len(photo), photo[half:], 201, false)
	put("upload, already whole", hash, 0, len(photo)-1, len(photo), photo, 200, false)
	k.call(t, apiCall{name: "upload without token", method: "PUT", path: "/v1/attachments/" + hash, body: photo[:10],
		contentType: "application/octet-stream", header: map[string]string{"Content-Range": "bytes 0-9/100"}, status: 401})

	// Push: a household, an inspection with both photos, an invalid
	// change (quarantined); then concurrent edits from two devices: a
	// merge by policy and a manual conflict.
	hh, insp, hh2 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	seq := int64(0)
	changeset := func(device string, changes ...syncproto.Change) syncproto.Changeset {
		seq++
		return syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: seq, SchemaVersion: 1, Changes: changes}
	}
	push := func(name, token string, cs syncproto.Changeset, status int) []byte {
		_, body := k.call(t, apiCall{name: name, method: "POST", path: "/v1/sync/push", token: token, contentType: json, body: mustJSON(t, cs), status: status})
		return body
	}
	first := changeset(workerDevice,
		storetest.RegisteredHousehold(hh, storetest.SouthVillage, "5002401072019999", storetest.T0),
		apitest.SouthHousing(insp, hh, hash, lost),
		storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "grade": "E"}),
		storetest.RegisteredHousehold(hh2, storetest.SouthVillage, "5002401072019999", storetest.T0),
		// A water inspection: the coverage report names the standards it applied.
		storetest.WaterInspection(uuid.NewString(), hh2, storetest.T0))
	push("push", worker, first, 200)
	push("push, replayed", worker, first, 200)
	other := ts.Login(t, "worker.two", otherDevice)
	seq = 0
	push("push, other tablet", other, changeset(otherDevice,
		storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}),
		storetest.Upsert("housing_inspection", insp, 1, storetest.T0, map[string]any{"grade": "C"})), 200)
	seq = 1
	body = push("push, concurrent", worker, changeset(workerDevice,
		storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}),
		storetest.Upsert("housing_inspection", insp, 1, storetest.T0, map[string]any{"grade": "B"})), 200)
	var pr syncproto.PushResponse
	decodeInto(t, body, &pr)
	if pr.Results[0].Status != "conflict" || pr.Results[1].Status != "merged" {
		t.Fatalf("concurrent edits: %s", body)
	}
	conflictID := pr.Results[0].Conflicts[0].ConflictID
	k.call(t, apiCall{name: "push, not JSON", method: "POST", path: "/v1/sync/push", token: worker, contentType: json, body: []byte(`{`), status: 400, invalid: true})
	k.call(t, apiCall{name: "push without token", method: "POST", path: "/v1/sync/push", contentType: json, body: mustJSON(t, first), status: 401})
	push("push, another device's id", worker, changeset(otherDevice, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0)), 403)
	stale := changeset(workerDevice, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	stale.DeviceSeq = 1
	push("push, stale device_seq", worker, stale, 409)
	big := changeset(workerDevice)
	for i := 0; i < 201; i++ {
		big.Changes = append(big.Changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	k.call(t, apiCall{name: "push, too many changes", method: "POST", path: "/v1/sync/push", token: worker, contentType: json,
		body: mustJSON(t, big), status: 413, invalid: true})
	k.call(t, apiCall{name: "push, no changes", method: "POST", path: "/v1/sync/push", token: worker, contentType: json,
		body: mustJSON(t, changeset(workerDevice)), status: 422, invalid: true})

	// Pull, checksum, the device's conflicts.
	k.call(t, apiCall{name: "pull", method: "GET", path: "/v1/sync/pull?limit=2", token: worker, status: 200})
	k.call(t, apiCall{name: "pull, unknown parameter", method: "GET", path: "/v1/sync/pull?since=1", token: worker, status: 400, invalid: true})
	k.call(t, apiCall{name: "pull, bad limit", method: "GET", path: "/v1/sync/pull?limit=0", token: worker, status: 422, invalid: true})
	k.call(t, apiCall{name: "pull without token", method: "GET", path: "/v1/sync/pull", status: 401})
	k.call(t, apiCall{name: "checksum", method: "GET", path: "/v1/sync/checksum", token: worker, status: 200})
	k.call(t, apiCall{name: "checksum, unknown parameter", method: "GET", path: "/v1/sync/checksum?cursor=x", token: worker, status: 400, invalid: true})
	k.call(t, apiCall{name: "checksum without token", method: "GET", path: "/v1/sync/checksum", status: 401})
	k.call(t, apiCall{name: "device conflicts", method: "GET", path: "/v1/sync/conflicts?ids=" + conflictID + "," + uuid.NewString(), token: worker, status: 200})
	k.call(t, apiCall{name: "device conflicts, no ids", method: "GET", path: "/v1/sync/conflicts?ids=", token: worker, status: 422})
	k.call(t, apiCall{name: "device conflicts, unknown parameter", method: "GET", path: "/v1/sync/conflicts?ids=x&all=1", token: worker, status: 400, invalid: true})
	k.call(t, apiCall{name: "device conflicts without token", method: "GET", path: "/v1/sync/conflicts?ids=x", status: 401})

	// Photos by scope.
	k.call(t, apiCall{name: "download", method: "GET", path: "/v1/attachments/" + hash, token: sup, status: 200})
	k.call(t, apiCall{name: "download, a range", method: "GET", path: "/v1/attachments/" + hash, token: sup, header: map[string]string{"Range": "bytes=0-9"}, status: 206})
	k.call(t, apiCall{name: "download, not modified", method: "GET", path: "/v1/attachments/" + hash, token: sup, header: map[string]string{"If-None-Match": `"` + hash + `"`}, status: 304})
	k.call(t, apiCall{name: "download, range beyond", method: "GET", path: "/v1/attachments/" + hash, token: sup, header: map[string]string{"Range": "bytes=999999-"}, status: 416})
	k.call(t, apiCall{name: "download, failed If-Match", method: "GET", path: "/v1/attachments/" + hash, token: sup, header: map[string]string{"If-Match": `"other"`}, status: 412})
	k.call(t, apiCall{name: "download, outside the scope", method: "GET", path: "/v1/attachments/" + hash, token: far, status: 403})
	k.call(t, apiCall{name: "download, never uploaded", method: "GET", path: "/v1/attachments/" + lost, token: sup, status: 404})
	k.call(t, apiCall{name: "download, bad hash", method: "GET", path: "/v1/attachments/ABC", token: sup, status: 400, invalid: true})

	// Records.
	k.call(t, apiCall{name: "record", method: "GET", path: "/v1/records/household/" + hh, token: sup, status: 200})
	k.call(t, apiCall{name: "record, unknown", method: "GET", path: "/v1/records/household/" + uuid.NewString(), token: sup, status: 404})
	k.call(t, apiCall{name: "record, field worker", method: "GET", path: "/v1/records/household/" + hh, token: worker, status: 403})
	k.call(t, apiCall{name: "record, unknown parameter", method: "GET", path: "/v1/records/household/" + hh + "?v=1", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "record without token", method: "GET", path: "/v1/records/household/" + hh, status: 401})
	k.call(t, apiCall{name: "history", method: "GET", path: "/v1/records/housing_inspection/" + insp + "/history", token: sup, status: 200})
	k.call(t, apiCall{name: "history, unknown", method: "GET", path: "/v1/records/housing_inspection/" + uuid.NewString() + "/history", token: sup, status: 404})
	k.call(t, apiCall{name: "history, outside the scope", method: "GET", path: "/v1/records/housing_inspection/" + insp + "/history", token: far, status: 403})
	k.call(t, apiCall{name: "history, unknown parameter", method: "GET", path: "/v1/records/household/" + hh + "/history?v=1", token: sup, status: 400, invalid: true})

	// Devices and receipts.
	k.call(t, apiCall{name: "devices", method: "GET", path: "/v1/devices?region=500240", token: sup, status: 200})
	k.call(t, apiCall{name: "devices, bad region", method: "GET", path: "/v1/devices?region=5", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "devices, outside the scope", method: "GET", path: "/v1/devices?region=150422", token: sup, status: 403})
	k.call(t, apiCall{name: "devices, unknown parameter", method: "GET", path: "/v1/devices?state=open", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "devices without token", method: "GET", path: "/v1/devices", status: 401})
	_, body = k.call(t, apiCall{name: "receipts", method: "GET", path: "/v1/devices/" + workerDevice + "/receipts?limit=1", token: sup, status: 200})
	var receipts struct {
		Cursor string `json:"cursor"`
	}
	decodeInto(t, body, &receipts)
	k.call(t, apiCall{name: "receipts, next page", method: "GET", path: "/v1/devices/" + workerDevice + "/receipts?limit=1&cursor=" + receipts.Cursor, token: sup, status: 200})
	k.call(t, apiCall{name: "receipts, unknown device", method: "GET", path: "/v1/devices/" + uuid.NewString() + "/receipts", token: sup, status: 404})
	k.call(t, apiCall{name: "receipts, bad cursor", method: "GET", path: "/v1/devices/" + workerDevice + "/receipts?cursor=AAAA", token: sup, status: 422})
	k.call(t, apiCall{name: "receipts, outside the scope", method: "GET", path: "/v1/devices/" + workerDevice + "/receipts", token: far, status: 403})
	k.call(t, apiCall{name: "receipts, unknown parameter", method: "GET", path: "/v1/devices/" + workerDevice + "/receipts?region=50", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "receipt", method: "GET", path: "/v1/receipts/" + first.ChangesetID, token: sup, status: 200})
	k.call(t, apiCall{name: "receipt, unknown", method: "GET", path: "/v1/receipts/" + uuid.NewString(), token: sup, status: 404})
	k.call(t, apiCall{name: "receipt, outside the scope", method: "GET", path: "/v1/receipts/" + first.ChangesetID, token: far, status: 403})
	k.call(t, apiCall{name: "receipt, field worker", method: "GET", path: "/v1/receipts/" + first.ChangesetID, token: worker, status: 403})

	// Snapshots.
	for _, q := range []string{"entity=household&format=ndjson", "entity=housing_inspection&format=csv&region=500240107",
		"format=geojson", "format=xlsx&region=500240"} {
		k.call(t, apiCall{name: "snapshot " + q, method: "GET", path: "/v1/snapshot?" + q, token: sup, status: 200})
	}
	k.call(t, apiCall{name: "snapshot, bad format", method: "GET", path: "/v1/snapshot?format=pdf&entity=household", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "snapshot, no entity", method: "GET", path: "/v1/snapshot?format=csv", token: sup, status: 422})
	k.call(t, apiCall{name: "snapshot, unknown parameter", method: "GET", path: "/v1/snapshot?entity=household&since=1", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "snapshot, field worker", method: "GET", path: "/v1/snapshot?entity=household", token: worker, status: 403})

	// The queues.
	k.call(t, apiCall{name: "conflicts", method: "GET", path: "/v1/conflicts?state=open", token: sup, status: 200})
	k.call(t, apiCall{name: "conflicts, all", method: "GET", path: "/v1/conflicts?region=500240107&limit=10", token: sup, status: 200})
	k.call(t, apiCall{name: "conflicts, bad state", method: "GET", path: "/v1/conflicts?state=closed", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "conflicts, unknown parameter", method: "GET", path: "/v1/conflicts?kind=x", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "conflicts, field worker", method: "GET", path: "/v1/conflicts", token: worker, status: 403})
	resolve := "/v1/conflicts/" + conflictID + "/resolve"
	k.call(t, apiCall{name: "resolve, no value", method: "POST", path: resolve, token: sup, contentType: json, body: []byte(`{"note": "?"}`), status: 422})
	k.call(t, apiCall{name: "resolve, not JSON", method: "POST", path: resolve, token: sup, contentType: json, body: []byte(`{"value": `), status: 400, invalid: true})
	k.call(t, apiCall{name: "resolve, unknown conflict", method: "POST", path: "/v1/conflicts/" + uuid.NewString() + "/resolve", token: sup, contentType: json,
		body: []byte(`{"choose": "kept"}`), status: 404})
	k.call(t, apiCall{name: "resolve, outside the scope", method: "POST", path: resolve, token: far, contentType: json, body: []byte(`{"choose": "kept"}`), status: 403})
	k.call(t, apiCall{name: "resolve", method: "POST", path: resolve, token: sup, contentType: json, body: []byte(`{"choose": "incoming", "note": "counted on site"}`), status: 200})
	k.call(t, apiCall{name: "resolve, again", method: "POST", path: resolve, token: sup, contentType: json, body: []byte(`{"value": 6}`), status: 409})
	_, body = k.call(t, apiCall{name: "quarantine", method: "GET", path: "/v1/quarantine?state=open", token: sup, status: 200})
	var quarantine struct {
		Quarantine []struct {
			ID string `json:"id"`
		} `json:"quarantine"`
	}
	decodeInto(t, body, &quarantine)
	if len(quarantine.Quarantine) != 1 {
		t.Fatalf("quarantine: %s", body)
	}
	closeEntry := "/v1/quarantine/" + quarantine.Quarantine[0].ID + "/close"
	k.call(t, apiCall{name: "quarantine, bad region", method: "GET", path: "/v1/quarantine?region=abc", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "quarantine, bad state", method: "GET", path: "/v1/quarantine?state=gone", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "quarantine, unknown parameter", method: "GET", path: "/v1/quarantine?kind=x", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "quarantine, field worker", method: "GET", path: "/v1/quarantine", token: worker, status: 403})
	k.call(t, apiCall{name: "close quarantine, no note", method: "POST", path: closeEntry, token: sup, contentType: json, body: []byte(`{"note": ""}`), status: 422, invalid: true})
	k.call(t, apiCall{name: "close quarantine, not JSON", method: "POST", path: closeEntry, token: sup, contentType: json, body: []byte(`{"note": 1}`), status: 400, invalid: true})
	k.call(t, apiCall{name: "close quarantine, unknown", method: "POST", path: "/v1/quarantine/" + uuid.NewString() + "/close", token: sup, contentType: json, body: []byte(`{"note": "x"}`), status: 404})
	k.call(t, apiCall{name: "close quarantine, outside the scope", method: "POST", path: closeEntry, token: far, contentType: json, body: []byte(`{"note": "x"}`), status: 403})
	k.call(t, apiCall{name: "close quarantine", method: "POST", path: closeEntry, token: sup, contentType: json, body: []byte(`{"note": "sent again as grade C"}`), status: 200})
	k.call(t, apiCall{name: "close quarantine, again", method: "POST", path: closeEntry, token: sup, contentType: json, body: []byte(`{"note": "x"}`), status: 409})
	k.call(t, apiCall{name: "quarantine, closed", method: "GET", path: "/v1/quarantine?state=closed", token: sup, status: 200})
	hh3, hh4 := uuid.NewString(), uuid.NewString()
	push("push, a second pair", worker, changeset(workerDevice,
		storetest.RegisteredHousehold(hh3, storetest.SouthVillage, "5002401072018888", storetest.T0),
		storetest.RegisteredHousehold(hh4, storetest.SouthVillage, "5002401072018888", storetest.T0)), 200)
	_, body = k.call(t, apiCall{name: "duplicates", method: "GET", path: "/v1/duplicates?state=open", token: sup, status: 200})
	var dups struct {
		Duplicates []struct {
			ID         string `json:"id"`
			HouseholdA string `json:"household_a"`
		} `json:"duplicates"`
	}
	decodeInto(t, body, &dups)
	if len(dups.Duplicates) != 2 || dups.Duplicates[0].HouseholdA != hh || dups.Duplicates[1].HouseholdA != hh3 {
		t.Fatalf("duplicates: %s", body)
	}
	merge := "/v1/duplicates/" + dups.Duplicates[0].ID + "/merge"
	dismiss := "/v1/duplicates/" + dups.Duplicates[1].ID + "/dismiss"
	k.call(t, apiCall{name: "dismiss, no note", method: "POST", path: dismiss, token: sup, contentType: json, body: []byte(`{}`), status: 422, invalid: true})
	k.call(t, apiCall{name: "dismiss, not JSON", method: "POST", path: dismiss, token: sup, contentType: json, body: []byte(`{"note": [`), status: 400, invalid: true})
	k.call(t, apiCall{name: "dismiss, unknown", method: "POST", path: "/v1/duplicates/" + uuid.NewString() + "/dismiss", token: sup, contentType: json, body: []byte(`{"note": "x"}`), status: 404})
	k.call(t, apiCall{name: "dismiss, outside the scope", method: "POST", path: dismiss, token: far, contentType: json, body: []byte(`{"note": "x"}`), status: 403})
	k.call(t, apiCall{name: "dismiss", method: "POST", path: dismiss, token: sup, contentType: json, body: []byte(`{"note": "two families, one number mistyped"}`), status: 200})
	k.call(t, apiCall{name: "dismiss, again", method: "POST", path: dismiss, token: sup, contentType: json, body: []byte(`{"note": "x"}`), status: 409})
	k.call(t, apiCall{name: "duplicates, dismissed", method: "GET", path: "/v1/duplicates?state=dismissed", token: sup, status: 200})
	k.call(t, apiCall{name: "duplicates, bad state", method: "GET", path: "/v1/duplicates?state=closed", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "duplicates, unknown parameter", method: "GET", path: "/v1/duplicates?limit=1", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "duplicates, field worker", method: "GET", path: "/v1/duplicates", token: worker, status: 403})
	k.call(t, apiCall{name: "merge, not JSON", method: "POST", path: merge, token: sup, contentType: json, body: []byte(`{"survivor": 1}`), status: 400, invalid: true})
	k.call(t, apiCall{name: "merge, unknown survivor", method: "POST", path: merge, token: sup, contentType: json,
		body: mustJSON(t, map[string]string{"survivor": uuid.NewString()}), status: 422})
	k.call(t, apiCall{name: "merge, no survivor", method: "POST", path: merge, token: sup, contentType: json,
		body: []byte(`{"note": "same family"}`), status: 422, invalid: true})
	k.call(t, apiCall{name: "merge, no body", method: "POST", path: merge, token: sup, status: 422, invalid: true})
	survivor := mustJSON(t, map[string]string{"survivor": hh})
	k.call(t, apiCall{name: "merge, unknown", method: "POST", path: "/v1/duplicates/" + uuid.NewString() + "/merge", token: sup, contentType: json, body: survivor, status: 404})
	k.call(t, apiCall{name: "merge, outside the scope", method: "POST", path: merge, token: far, contentType: json, body: survivor, status: 403})
	k.call(t, apiCall{name: "merge", method: "POST", path: merge, token: sup, contentType: json,
		body: mustJSON(t, map[string]string{"survivor": hh, "note": "same family"}), status: 200})
	k.call(t, apiCall{name: "merge, again", method: "POST", path: merge, token: sup, contentType: json, body: survivor, status: 409})

	// Reports.
	for _, path := range []string{"/v1/reports/coverage", "/v1/reinspections"} {
		k.call(t, apiCall{name: path, method: "GET", path: path + "?region=500240", token: sup, status: 200})
		k.call(t, apiCall{name: path + ", whole scope", method: "GET", path: path, token: admin, status: 200})
		k.call(t, apiCall{name: path + ", bad region", method: "GET", path: path + "?region=1234567890123", token: sup, status: 422, invalid: true})
		k.call(t, apiCall{name: path + ", outside the scope", method: "GET", path: path + "?region=150422", token: sup, status: 403})
		k.call(t, apiCall{name: path + ", unknown parameter", method: "GET", path: path + "?limit=1", token: sup, status: 400, invalid: true})
		k.call(t, apiCall{name: path + ", field worker", method: "GET", path: path, token: worker, status: 403})
	}
	// Reports and lists as tables.
	for _, path := range []string{"/v1/reports/coverage", "/v1/reinspections", "/v1/conflicts", "/v1/duplicates"} {
		k.call(t, apiCall{name: path + " csv", method: "GET", path: path + "?format=csv&region=500240", token: sup, status: 200})
		k.call(t, apiCall{name: path + " xlsx", method: "GET", path: path + "?format=xlsx&lang=zh", token: sup, status: 200})
		k.call(t, apiCall{name: path + " json", method: "GET", path: path + "?format=json&lang=en", token: sup,
			header: map[string]string{"Accept-Language": "zh-CN"}, status: 200})
		k.call(t, apiCall{name: path + ", bad format", method: "GET", path: path + "?format=pdf", token: sup, status: 422, invalid: true})
	}
	k.call(t, apiCall{name: "coverage summary", method: "GET", path: "/v1/reports/coverage?summary=villages&region=500240", token: sup, status: 200})
	k.call(t, apiCall{name: "coverage summary, whole scope", method: "GET", path: "/v1/reports/coverage?summary=villages", token: admin, status: 200})
	k.call(t, apiCall{name: "coverage summary, bad value", method: "GET", path: "/v1/reports/coverage?summary=households", token: sup, status: 422, invalid: true})
	k.call(t, apiCall{name: "coverage summary as csv", method: "GET", path: "/v1/reports/coverage?summary=villages&format=csv", token: sup, status: 422})
	k.call(t, apiCall{name: "coverage summary, outside the scope", method: "GET", path: "/v1/reports/coverage?summary=villages&region=150422", token: sup, status: 403})
	k.call(t, apiCall{name: "coverage csv, never inspected", method: "GET", path: "/v1/reports/coverage?format=csv&table=never_inspected",
		token: sup, status: 200})
	k.call(t, apiCall{name: "coverage xlsx with a table", method: "GET", path: "/v1/reports/coverage?format=xlsx&table=areas",
		token: sup, status: 422})
	k.call(t, apiCall{name: "conflicts csv with a cursor", method: "GET", path: "/v1/conflicts?format=csv&limit=5", token: sup, status: 422})

	// Revocation, last: the other tablet is lost.
	k.call(t, apiCall{name: "revoke, field worker", method: "POST", path: "/v1/devices/" + otherDevice + "/revoke", token: worker, status: 403})
	k.call(t, apiCall{name: "revoke, unknown device", method: "POST", path: "/v1/devices/" + uuid.NewString() + "/revoke", token: sup, status: 404})
	k.call(t, apiCall{name: "revoke without token", method: "POST", path: "/v1/devices/" + otherDevice + "/revoke", status: 401})
	outboxOf := func(device, user string) map[string]any {
		cs := changeset(device, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		cs.DeviceSeq = 100
		return map[string]any{"format": "fieldsync-outbox", "version": 1, "device_id": device, "user": user,
			"changesets": []syncproto.Changeset{cs}}
	}
	outbox := mustJSON(t, outboxOf(otherDevice, "worker.two"))
	replay := "/v1/devices/" + otherDevice + "/outbox"
	k.call(t, apiCall{name: "replay outbox, device not revoked", method: "POST", path: replay, token: sup, contentType: json, body: outbox, status: 409})
	k.call(t, apiCall{name: "revoke", method: "POST", path: "/v1/devices/" + otherDevice + "/revoke", token: sup, status: 200})
	k.call(t, apiCall{name: "pull, revoked device", method: "GET", path: "/v1/sync/pull", token: other, status: 401})
	k.call(t, apiCall{name: "replay outbox, field worker", method: "POST", path: replay, token: worker, contentType: json, body: outbox, status: 403})
	k.call(t, apiCall{name: "replay outbox, outside the scope", method: "POST", path: replay, token: far, contentType: json, body: outbox, status: 403})
	k.call(t, apiCall{name: "replay outbox, unknown device", method: "POST", path: "/v1/devices/" + uuid.NewString() + "/outbox", token: sup, contentType: json, body: outbox, status: 404})
	k.call(t, apiCall{name: "replay outbox without token", method: "POST", path: replay, contentType: json, body: outbox, status: 401})
	k.call(t, apiCall{name: "replay outbox, not JSON", method: "POST", path: replay, token: sup, contentType: json, body: []byte(`{`), status: 400, invalid: true})
	wrongUser := outboxOf(otherDevice, "worker.xituo")
	k.call(t, apiCall{name: "replay outbox, another user", method: "POST", path: replay, token: sup, contentType: json, body: mustJSON(t, wrongUser), status: 422})
	k.call(t, apiCall{name: "replay outbox", method: "POST", path: replay, token: sup, contentType: json, body: outbox, status: 200})
	k.call(t, apiCall{name: "replay outbox, again", method: "POST", path: replay, token: sup, contentType: json, body: outbox, status: 200})

	// A database that cannot grow: writes answer 503, reads go on.
	if _, err := ts.Store.SetMaxPageCountForTest(ctx, 0); err != nil {
		t.Fatal(err)
	}
	full := changeset(workerDevice)
	for i := 0; i < 100; i++ {
		full.Changes = append(full.Changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	k.call(t, apiCall{name: "push, disk full", method: "POST", path: "/v1/sync/push", token: worker, contentType: json,
		body: mustJSON(t, full), status: 503})

	verificationContract(t, doc, k)
	followupsContract(t, doc, k)
	exitsContract(t, doc, k)
	registryContract(t, doc, k)
	k.checkCoverage(t)
}
