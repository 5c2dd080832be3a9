package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/xuri/excelize/v2"
)

// environ is an environment for Env.LookupEnv.
func environ(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestSettingsPrecedence: a flag wins over the environment, which wins
// over the config file, which wins over the default; an empty variable is
// unset; FIELDSYNC_CONFIG names the file when --config does not.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "fieldsync.toml", `
# every key is a flag's name
a = "from-file"
b = "from-file"
c = "from-file"
e = 42
f = true
`)
	newSet := func() (*flag.FlagSet, map[string]*string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.String(configFlag, "", "")
		vals := map[string]*string{}
		for _, n := range []string{"a", "b", "c", "d", "g"} {
			vals[n] = fs.String(n, "default", "")
		}
		fs.Int("e", 1, "")
		fs.Bool("f", false, "")
		return fs, vals
	}
	for _, viaEnv := range []bool{false, true} {
		fs, vals := newSet()
		args := []string{"--a", "from-flag"}
		env := []string{"FIELDSYNC_A", "from-env", "FIELDSYNC_B", "from-env", "FIELDSYNC_G", ""}
		if viaEnv {
			env = append(env, "FIELDSYNC_CONFIG", file)
		} else {
			args = append(args, "--config", file)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		sources, path, err := applySettings(fs, environ(env...))
		if err != nil {
			t.Fatal(err)
		}
		if path != file {
			t.Errorf("config file %q", path)
		}
		want := map[string]string{"a": "from-flag", "b": "from-env", "c": "from-file", "d": "default", "g": "default"}
		for k, v := range want {
			if *vals[k] != v {
				t.Errorf("config via env %v: %s = %q, want %q", viaEnv, k, *vals[k], v)
			}
		}
		if e := fs.Lookup("e").Value.String(); e != "42" || fs.Lookup("f").Value.String() != "true" {
			t.Errorf("numbers and booleans from the file: e=%s f=%s", e, fs.Lookup("f").Value)
		}
		wantSources := map[string]settingSource{"a": fromFlag, "b": fromEnv, "c": fromFile, "d": fromDefault, "g": fromDefault}
		for k, v := range wantSources {
			if sources[k] != v {
				t.Errorf("source of %s: %s, want %s", k, sources[k], v)
			}
		}
	}
}

// TestServeSettingsFromEverywhere starts serve with its address from the
// file overridden by the environment overridden by a flag, the log format
// from the environment over the file, and /metrics on a listener of its own
// from the file.
func TestServeSettingsFromEverywhere(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "serve.toml", `
addr = "256.0.0.1:80"
log-format = "text"
log-level = "debug"
metrics-addr = "127.0.0.1:0"
busy-timeout = "3s"
reinspect-after = "180d"
`)
	var stderr apitest.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Env{Args: []string{"serve", "--config", file, "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data")},
			Stdout: io.Discard, Stderr: &stderr, Listening: func(a string) { addr <- a },
			LookupEnv: environ("FIELDSYNC_ADDR", "127.0.0.1:1", "FIELDSYNC_LOG_FORMAT", "json")})
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	lines := stderr.Lines(t) // JSON: the environment won over the file
	var serving map[string]any
	for _, l := range lines {
		if l["msg"] == "fieldsync serving" {
			serving = l
		}
	}
	if serving == nil || serving["config"] != file {
		t.Fatalf("no serving line naming the config file: %v", lines)
	}
	metricsURL, _ := serving["metrics"].(string)
	if !strings.HasPrefix(metricsURL, "http://127.0.0.1:") || strings.Contains(metricsURL, a) {
		t.Fatalf("metrics at %q, API at %s", metricsURL, a)
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("fieldsync_build_info")) {
		t.Fatalf("metrics listener: %d %.200s", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + a + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("/metrics on the API listener with --metrics-addr: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + a + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

// TestServeRefusesBadConfiguration: a bad value from a flag, the
// environment or the file, an unknown or misplaced key, a bad address stop
// serve before it creates anything, with a message naming the setting.
func TestServeRefusesBadConfiguration(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   []string
		file  string
		wants []string
	}{
		{"env duration", nil, []string{"FIELDSYNC_BUSY_TIMEOUT", "soon"}, "", []string{`FIELDSYNC_BUSY_TIMEOUT="soon" (--busy-timeout): must be a duration such as 30s`}},
		{"env number", nil, []string{"FIELDSYNC_MAX_PULL", "lots"}, "", []string{`FIELDSYNC_MAX_PULL="lots" (--max-pull): must be a whole number`}},
		{"file duration", nil, nil, `read-timeout = "soon"`, []string{`read-timeout = "soon"`, "must be a duration such as 30s, 2m or 1h30m"}},
		{"file duration as number", nil, nil, `read-timeout = 30`, []string{`read-timeout = "30"`, "must be a duration such as 30s"}},
		{"file unknown key", nil, nil, "colour = \"red\"\naddr = \"127.0.0.1:0\"", []string{`unknown key "colour"`}},
		{"file config key", nil, nil, `config = "other.toml"`, []string{`unknown key "config"`}},
		{"file table", nil, nil, "[server]\naddr = \"x\"", []string{`unknown key "server"`}},
		{"file array", nil, nil, `data = ["a", "b"]`, []string{"data must be a string, a number or true/false"}},
		{"file syntax", nil, nil, `addr = "127.0.0.1:0`, []string{"config file", "serve.toml"}},
		{"file missing", []string{"--config", "/nonexistent/fieldsync.toml"}, nil, "", []string{"config file /nonexistent/fieldsync.toml does not exist"}},
		{"bad address", []string{"--addr", "nonsense"}, nil, "", []string{`--addr must be HOST:PORT such as 127.0.0.1:8080 or :8080, not "nonsense"`}},
		{"port out of range", []string{"--addr", "127.0.0.1:99999"}, nil, "", []string{"--addr must be HOST:PORT"}},
		{"env address", nil, []string{"FIELDSYNC_ADDR", "localhost"}, "", []string{`--addr must be HOST:PORT`, `"localhost"`}},
		{"metrics address", []string{"--metrics-addr", "9464"}, nil, "", []string{"--metrics-addr must be HOST:PORT"}},
		{"log level", []string{"--log-level", "loud"}, nil, "", []string{`log level must be debug, info, warn or error, not "loud"`}},
		{"log format", nil, []string{"FIELDSYNC_LOG_FORMAT", "xml"}, "", []string{`log format must be json, text or auto, not "xml"`}},
		{"flag duration", []string{"--shutdown-grace", "later"}, nil, "", []string{`invalid value "later" for flag -shutdown-grace`}},
		{"reinspect-after", nil, []string{"FIELDSYNC_REINSPECT_AFTER", "0d"}, "", []string{"FIELDSYNC_REINSPECT_AFTER", "must be greater than zero"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			args := append([]string{"serve", "--data", data}, c.args...)
			if c.file != "" {
				args = append(args, "--config", writeFile(t, dir, "serve.toml", c.file))
			}
			if !containsArg(args, "--addr") && !containsArg(c.env, "FIELDSYNC_ADDR") {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			var stderr bytes.Buffer
			// A serve that starts after all stops at once, and fails the case.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := Run(ctx, Env{Args: args, Stdout: io.Discard, Stderr: &stderr, LookupEnv: environ(c.env...),
				Listening: func(string) { cancel() }})
			if err == nil {
				t.Fatal("serve started")
			}
			msg := err.Error() + "\n" + stderr.String()
			for _, w := range c.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the data directory was created (%v)", err)
			}
		})
	}
	// The binary: a clear message on standard error and exit status 1.
	cmd := exec.Command(fieldsyncBinary(t), "serve", "--data", filepath.Join(t.TempDir(), "data"))
	cmd.Env = append(os.Environ(), "FIELDSYNC_BUSY_TIMEOUT=soon")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "fieldsync: invalid configuration:\nFIELDSYNC_BUSY_TIMEOUT=\"soon\" (--busy-timeout): must be a duration") {
		t.Fatalf("binary with a bad variable: %v\n%s", err, out)
	}
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// TestHelpIsComplete: fieldsync --help lists every command Run accepts,
// and each command's --help (exit 0, on standard output) says what it does
// and describes every flag of its synopsis; serve's names each setting's
// default and environment variable.
func TestHelpIsComplete(t *testing.T) {
	run := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), Env{Args: args, Stdout: &stdout, Stderr: &stderr})
		return stdout.String(), stderr.String(), err
	}
	top, _, err := run("--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c.name) + ` +` + regexp.QuoteMeta(c.summary) + `$`).MatchString(top) {
			t.Errorf("fieldsync --help does not list %q:\n%s", c.name, top)
		}
		help, stderr, err := run(append(strings.Fields(c.name), "--help")...)
		if err != nil || stderr != "" {
			t.Errorf("%s --help: %v, stderr %q", c.name, err, stderr)
			continue
		}
		if !strings.HasPrefix(help, "Usage: fieldsync "+c.name+" ") || !strings.Contains(help, c.about) {
			t.Errorf("%s --help lacks its usage or description:\n%s", c.name, help)
		}
		for _, f := range regexp.MustCompile(`--[a-z-]+`).FindAllString(c.synopsis, -1) {
			if !strings.Contains(help, "\n  "+f+" ") && !strings.Contains(help, "\n  "+f+"\n") {
				t.Errorf("%s --help does not describe %s:\n%s", c.name, f, help)
			}
		}
		// Every flag line is followed by a description.
		lines := strings.Split(help, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "  --") && (i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "        ") || len(strings.TrimSpace(lines[i+1])) < 10) {
				t.Errorf("%s --help: %q has no description", c.name, l)
			}
		}
		if c.name == "serve" {
			n := 0
			for i, l := range lines {
				if name, ok := strings.CutPrefix(l, "  --"); ok {
					n++
					name, _, _ = strings.Cut(name, " ")
					rest := strings.Join(lines[i+1:min(i+3, len(lines))], "\n")
					if !strings.Contains(rest, "env "+envName(name)) {
						t.Errorf("serve --help: --%s lacks env %s", name, envName(name))
					}
				}
			}
			for _, d := range []string{"(default 127.0.0.1:8080; env FIELDSYNC_ADDR)", "(default 10s; env FIELDSYNC_BUSY_TIMEOUT)",
				"(default 365d; env FIELDSYNC_REINSPECT_AFTER)", "(default auto; env FIELDSYNC_LOG_FORMAT)", "(env FIELDSYNC_CONFIG)"} {
				if !strings.Contains(help, d) {
					t.Errorf("serve --help lacks %q", d)
				}
			}
			if n < 19 {
				t.Errorf("serve --help lists %d settings", n)
			}
		}
	}
	for _, group := range []string{"user", "key"} {
		out, _, err := run(group, "--help")
		if err != nil || !strings.Contains(out, "fieldsync "+group+" ") {
			t.Errorf("%s --help: %v %s", group, err, out)
		}
	}
	if _, stderr, err := run("frobnicate"); !errors.Is(err, ErrUsage) || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %s", err, stderr)
	}
	out, _, err := run("version")
	if err != nil || out != fmt.Sprintf("fieldsync %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH) {
		t.Errorf("version: %v %q", err, out)
	}
}

// TestExportMatchesSnapshot exports the demo data set in every format
// while the server has the database open, and compares each file with
// GET /v1/snapshot of the same query: identical bytes in every format (and
// identical cells in the XLSX). The GeoJSON's summary counts the households
// without a location, as the response's trailer does.
func TestExportMatchesSnapshot(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	out := t.TempDir()
	cases := []struct{ query, format, entity, region string }{
		{"format=ndjson&entity=housing_inspection", "ndjson", "housing_inspection", ""},
		{"format=csv&entity=household&region=500240", "csv", "household", "500240"},
		{"format=csv&entity=water_inspection&region=150422101", "csv", "water_inspection", "150422101"},
		{"format=geojson&region=500240107", "geojson", "", "500240107"},
		{"format=xlsx&region=150422", "xlsx", "", "150422"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			resp, want := ts.Do(t, http.MethodGet, "/v1/snapshot?"+c.query, "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("snapshot: %d %s", resp.StatusCode, want)
			}
			file := filepath.Join(out, strings.NewReplacer("&", "_", "=", "-").Replace(c.query))
			args := []string{"export", "--data", ts.Dir, "--format", c.format, "--out", file}
			if c.entity != "" {
				args = append(args, "--entity", c.entity)
			}
			if c.region != "" {
				args = append(args, "--region", c.region)
			}
			var stdout, stderr bytes.Buffer
			if err := Run(context.Background(), Env{Args: args, Stdout: &stdout, Stderr: &stderr}); err != nil {
				t.Fatalf("export: %v\n%s", err, stderr.String())
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), "exported ") || !strings.Contains(stdout.String(), resp.Header.Get("X-Snapshot-Cursor")) {
				t.Errorf("export said %q; the snapshot's cursor is %s", stdout.String(), resp.Header.Get("X-Snapshot-Cursor"))
			}
			if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("export differs from the snapshot: %d bytes vs %d\n%.300s\n%.300s", len(got), len(want), got, want)
			}
			if c.format == "geojson" {
				n := resp.Trailer.Get("X-Households-Without-Location")
				if n == "" || !strings.Contains(stdout.String(), n+" of them without a location") {
					t.Errorf("export said %q; the snapshot's trailer %s is %q", stdout.String(), "X-Households-Without-Location", n)
				}
			}
			if c.format != "xlsx" {
				return
			}
			if a, b := xlsxCells(t, got), xlsxCells(t, want); a != b || len(a) < 1000 {
				t.Fatalf("XLSX cells differ (%d vs %d characters)", len(a), len(b))
			}
		})
	}
	matches, _ := filepath.Glob(filepath.Join(out, "*.tmp"))
	if len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// xlsxCells is every sheet's cells as text.
func xlsxCells(tb testing.TB, b []byte) string {
	tb.Helper()
	book, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	defer book.Close()
	var sb strings.Builder
	for _, sheet := range book.GetSheetList() {
		rows, err := book.GetRows(sheet)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&sb, "[%s]\n", sheet)
		for _, r := range rows {
			sb.WriteString(strings.Join(r, "\t") + "\n")
		}
	}
	return sb.String()
}

// TestExportRefusesBadRequests: bad flags are errors naming the flag, and
// no file is left behind.
func TestExportRefusesBadRequests(t *testing.T) {
	ts := apitest.MustServe(t)
	out := filepath.Join(t.TempDir(), "out.csv")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--format", "pdf"}, "--format must be one of ndjson, csv, geojson, xlsx"},
		{[]string{"--format", "csv"}, "--entity is required for format csv"},
		{[]string{"--entity", "school"}, "--entity must be one of followup_visit, household"},
		{[]string{"--entity", "household", "--region", "5x"}, "region must be a division-code prefix of 2 to 12 digits"},
		{[]string{"--entity", "household", "--as-of", "AAAA"}, "--as-of must be a cursor returned by this server"},
		{[]string{"--entity", "household", "--data", t.TempDir()}, "no database at"},
		{[]string{"--entity", "household", "--out", ""}, "--out is required"},
	}
	for _, c := range cases {
		args := append([]string{"export", "--data", ts.Dir, "--out", out}, c.args...)
		err := Run(context.Background(), Env{Args: args, Stdout: io.Discard, Stderr: io.Discard})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
	if err := os.WriteFile(out, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Env{Args: []string{"export", "--data", ts.Dir, "--entity", "household", "--out", out},
		Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "exists; use --force") {
		t.Errorf("existing file: %v", err)
	}
}

// TestProgressLines: without a terminal, long work reports plain lines at
// each tenth, or every 10,000 items when the total is unknown.
func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "seed", progressChanges)
	for i := int64(0); i <= 870; i += 30 {
		p.set(i, 870)
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 11 || !strings.HasPrefix(lines[0], "seed: 0 changes of 870 changes (0%") ||
		!strings.HasPrefix(lines[10], "seed: 870 changes of 870 changes (100%") {
		t.Fatalf("lines:\n%s", b.String())
	}
	b.Reset()
	p = newProgress(&b, "export", progressRecords)
	for i := int64(1000); i <= 25_000; i += 1000 {
		p.set(i, 0)
	}
	p.set(25_300, 0)
	p.finish()
	if got := strings.Split(strings.TrimSpace(b.String()), "\n"); len(got) != 4 || !strings.HasPrefix(got[3], "export: 25300 records") {
		t.Fatalf("lines:\n%s", b.String())
	}
}
