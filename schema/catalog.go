package schema

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VersionFile is the file of a version directory that describes the
// version: its number, publication date, title, source and the migration
// steps from the version before.
const VersionFile = "version.json"

// VersionInfo is what a version directory's VersionFile declares.
type VersionInfo struct {
	// Version is the version's number; it must equal the directory's name.
	Version int `json:"version"`
	// Published is the day the version takes effect (YYYY-MM-DD).
	Published string `json:"published"`
	// Title names the version for people, by language.
	Title map[string]string `json:"title,omitempty"`
	// Source names the standard or document the version implements.
	Source string `json:"source,omitempty"`
	// Migrations are the steps from the version before to this one
	// (CompileMigration); version 1 has none.
	Migrations json.RawMessage `json:"migrations,omitempty"`
}

// Catalog is a form set: every published version of the forms, numbered
// consecutively from 1, and the migrations between them. It is immutable
// once loaded and safe for concurrent use.
type Catalog struct {
	versions []*Schema     // versions[n-1] is version n
	infos    []VersionInfo // infos[n-1] declares version n
	docs     [][]byte      // docs[n-1] is version n's canonical Document
	ups      []*Migration  // ups[n-2] migrates version n-1 to n
}

// SetError is one problem of a form set: the file it is in (relative to
// the set's directory), the JSON path of the offending value in it ("$"
// for the whole file) and what is wrong.
type SetError struct {
	File    string
	Path    string
	Message string
}

// Error renders the problem as "file: path: message".
func (e SetError) Error() string { return e.File + ": " + e.Path + ": " + e.Message }

// SetErrors are every problem LoadCatalog found in a form set, in file
// order.
type SetErrors []SetError

// Error renders the problems one a line.
func (es SetErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return plural(len(es), "problem") + " in the form set:\n" + strings.Join(lines, "\n")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// Latest returns the newest version of the set.
func (c *Catalog) Latest() *Schema { return c.versions[len(c.versions)-1] }

// Version returns version n of the set, or nil when the set has none.
func (c *Catalog) Version(n int) *Schema {
	if n < 1 || n > len(c.versions) {
		return nil
	}
	return c.versions[n-1]
}

// Versions lists the set's version numbers, oldest first: 1, 2, …
func (c *Catalog) Versions() []int {
	out := make([]int, len(c.versions))
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// Info returns what version n declares in its VersionFile; the zero
// VersionInfo when the set has no version n.
func (c *Catalog) Info(n int) VersionInfo {
	if c.Version(n) == nil {
		return VersionInfo{}
	}
	return c.infos[n-1]
}

// Document returns the canonical JSON of version n — its VersionFile's
// members and its forms, as the store keeps a published version — or nil
// when the set has no version n. Two versions are the same when their
// documents are byte for byte equal, whatever the files' layout.
func (c *Catalog) Document(n int) []byte {
	if c.Version(n) == nil {
		return nil
	}
	return c.docs[n-1]
}

// Digest returns the SHA-256 (hex) of version n's Document.
func (c *Catalog) Digest(n int) string {
	sum := sha256.Sum256(c.Document(n))
	return hex.EncodeToString(sum[:])
}

// Up migrates the fields of one change of entity, sent in version from,
// to the latest version, by each version's migration in turn. created
// tells whether the change creates its record (base_version 0; defaults
// apply only then). It returns the migrated fields and the names of the
// fields a step dropped (their values stay in the change log). It returns
// an error when from is not a version of the set or a step cannot apply.
func (c *Catalog) Up(from int, entity string, fields map[string]json.RawMessage, created bool) (map[string]json.RawMessage, []string, error) {
	if c.Version(from) == nil {
		return nil, nil, fmt.Errorf("schema: no version %d (the latest is %d)", from, len(c.versions))
	}
	var dropped []string
	for n := from + 1; n <= len(c.versions); n++ {
		out, d, err := c.ups[n-2].Up(entity, fields, created)
		if err != nil {
			return nil, nil, fmt.Errorf("schema: migrating to version %d: %w", n, err)
		}
		fields, dropped = out, append(dropped, d...)
	}
	return fields, dropped, nil
}

// Origins maps each field of entity in the latest version to the field
// of version from whose last write it carries, through every migration
// in turn (Migration.Origins): what a record migrated from version from
// keeps the per-field history of. A field that only a default sets has no
// origin; a version the set lacks returns nil.
func (c *Catalog) Origins(from int, entity string) map[string]string {
	if c.Version(from) == nil {
		return nil
	}
	var out map[string]string
	if f := c.Version(from).Form(entity); f != nil {
		out = make(map[string]string, len(f.Fields))
		for _, fd := range f.Fields {
			out[fd.Name] = fd.Name
		}
	}
	for n := from + 1; n <= len(c.versions); n++ {
		step := c.ups[n-2].Origins(entity)
		next := make(map[string]string, len(step))
		for name, o := range step {
			if first, ok := out[o]; ok {
				next[name] = first
			}
		}
		out = next
	}
	return out
}

// Down converts the fields of a record of entity in the latest version to
// version to, by each migration's Down in turn, newest first. It returns
// the converted fields and the names of the fields version to cannot
// express (the caller flags the record). A version the set lacks returns
// the fields unchanged.
func (c *Catalog) Down(to int, entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string) {
	if c.Version(to) == nil {
		return fields, nil
	}
	var lost []string
	for n := len(c.versions); n > to; n-- {
		var l []string
		fields, l = c.ups[n-2].Down(entity, fields)
		lost = append(lost, l...)
	}
	return fields, lost
}

//go:embed forms
var builtInFiles embed.FS

var (
	builtInOnce sync.Once
	builtInSet  *Catalog
	builtInErr  error
)

func builtIn() (*Catalog, error) {
	builtInOnce.Do(func() { builtInSet, builtInErr = LoadCatalog(builtInFiles, "forms") })
	return builtInSet, builtInErr
}

// BuiltIn returns the form set embedded in this build (schema/forms/1/
// and any later version directory). It panics if the embedded set is
// invalid, which a test rules out.
func BuiltIn() *Catalog {
	c, err := builtIn()
	if err != nil {
		panic(err)
	}
	return c
}

// LoadCatalog reads the form set under dir of fsys: one directory per
// version, named by its number (1, 2, …, consecutive from 1), each holding
// its VersionFile and its form files (*.json). Files that are not
// directories beside the versions are ignored (a README). It returns every
// problem at once as SetErrors, each with its file and JSON path; a set
// with any problem returns no catalog.
func LoadCatalog(fsys fs.FS, dir string) (*Catalog, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, SetErrors{{File: ".", Path: "$", Message: "cannot read the form set: " + errText(err)}}
	}
	var errs SetErrors
	var numbers []int
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 1 || e.Name() != strconv.Itoa(n) {
			errs = append(errs, SetError{File: e.Name(), Path: "$", Message: "a version directory is named by its number (1, 2, …)"})
			continue
		}
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	if len(numbers) == 0 && len(errs) == 0 {
		errs = append(errs, SetError{File: ".", Path: "$", Message: "no version directory (1/, 2/, …)"})
	}
	for i, n := range numbers {
		if n != i+1 {
			errs = append(errs, SetError{File: strconv.Itoa(n), Path: "$",
				Message: fmt.Sprintf("versions must be consecutive from 1: version %d is missing", i+1)})
			break
		}
	}
	c := &Catalog{}
	for _, n := range numbers {
		// A version with problems still yields the forms that loaded, so
		// that its migrations (and the next version's) are checked too.
		sch, info, verrs := loadVersion(fsys, dir, n)
		errs = append(errs, verrs...)
		errs = append(errs, c.add(sch, info, strconv.Itoa(n)+"/"+VersionFile)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// add appends a loaded version, compiling its migrations from the version
// before; sch nil records nothing (an earlier problem). file names the
// version's VersionFile in errors.
func (c *Catalog) add(sch *Schema, info VersionInfo, file string) SetErrors {
	if sch == nil || (len(c.versions) > 0 && c.versions[len(c.versions)-1] == nil) {
		c.versions = append(c.versions, nil)
		return nil
	}
	var errs SetErrors
	if len(c.versions) > 0 {
		m, err := CompileMigration(c.versions[len(c.versions)-1], sch, info.Migrations)
		var me *MigrationError
		switch {
		case errors.As(err, &me):
			for _, fe := range me.Errors {
				errs = append(errs, SetError{File: file, Path: fe.Path, Message: fe.Message})
			}
		case err != nil:
			errs = append(errs, SetError{File: file, Path: "migrations", Message: err.Error()})
		}
		c.ups = append(c.ups, m)
	} else if len(info.Migrations) > 0 && !bytes.Equal(info.Migrations, []byte("[]")) {
		errs = append(errs, SetError{File: file, Path: "migrations", Message: "version 1 has no version before it to migrate from"})
	}
	doc, err := json.Marshal(Document{VersionInfo: info, Forms: sch.Forms, Standards: sch.Standards, Verification: sch.verification, Monitoring: sch.monitoring, Registries: sch.registries})
	if err != nil {
		errs = append(errs, SetError{File: file, Path: "$", Message: errText(err)})
	}
	if len(errs) > 0 {
		c.versions = append(c.versions, nil)
		return errs
	}
	c.versions = append(c.versions, sch)
	c.infos = append(c.infos, info)
	c.docs = append(c.docs, doc)
	return nil
}

// Document is a version as the store keeps it and GET /v1/schema?version=
// describes it: its VersionFile's members and its forms.
type Document struct {
	VersionInfo
	Forms []*Form `json:"forms"`
	// Standards are the version's StandardsFile, when it has one.
	Standards *StandardSet `json:"standards,omitempty"`
	// Verification is the version's VerificationFile, when it has one.
	Verification *Verification `json:"verification,omitempty"`
	// Monitoring is the version's MonitoringFile, when it has one.
	Monitoring *Monitoring `json:"monitoring,omitempty"`
	// Registries are the version's DepartmentsFile and RegistriesFile,
	// when it has them.
	Registries *Registries `json:"registries,omitempty"`
}

// ParseDocument reads a version's canonical Document (Catalog.Document)
// back into its schema and declaration, checking the forms as a load does.
func ParseDocument(data []byte) (*Schema, VersionInfo, error) {
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, VersionInfo{}, fmt.Errorf("schema document: %w", err)
	}
	if doc.Standards != nil {
		if errs := doc.Standards.check(); len(errs) > 0 {
			return nil, VersionInfo{}, fmt.Errorf("schema document: standards: %w", errs[0])
		}
	}
	sch, err := build(doc.Version, doc.Forms, doc.Standards)
	if err != nil {
		return nil, VersionInfo{}, err
	}
	if doc.Verification != nil {
		if errs := doc.Verification.check(sch); len(errs) > 0 {
			return nil, VersionInfo{}, fmt.Errorf("schema document: verification: %w", errs[0])
		}
		sch.verification = doc.Verification
	}
	if doc.Monitoring != nil {
		if errs := doc.Monitoring.check(sch, sch.verification); len(errs) > 0 {
			return nil, VersionInfo{}, fmt.Errorf("schema document: monitoring: %w", errs[0])
		}
		sch.monitoring = doc.Monitoring
	}
	if doc.Registries != nil {
		var errs SetErrors
		if len(doc.Registries.Departments) > 0 {
			errs = checkDepartments(doc.Registries.Departments)
		}
		if len(doc.Registries.Sources) > 0 {
			errs = append(errs, doc.Registries.checkSources(sch, false)...)
		}
		if len(errs) > 0 {
			return nil, VersionInfo{}, fmt.Errorf("schema document: registries: %w", errs[0])
		}
		sch.registries = doc.Registries
	}
	return sch, doc.VersionInfo, nil
}

// loadVersion reads version n's directory: its VersionFile and its forms,
// checked on their own and together.
func loadVersion(fsys fs.FS, dir string, n int) (*Schema, VersionInfo, SetErrors) {
	vdir := path.Join(dir, strconv.Itoa(n))
	rel := func(name string) string { return strconv.Itoa(n) + "/" + path.Base(name) }
	var errs SetErrors
	var info VersionInfo
	vfile := path.Join(vdir, VersionFile)
	if b, err := fs.ReadFile(fsys, vfile); err != nil {
		errs = append(errs, SetError{File: rel(vfile), Path: "$", Message: "every version directory needs its " + VersionFile})
	} else if p, msg := strictDecode(b, &info); msg != "" {
		errs = append(errs, SetError{File: rel(vfile), Path: p, Message: msg})
	} else {
		if info.Version != n {
			errs = append(errs, SetError{File: rel(vfile), Path: "version", Message: fmt.Sprintf("must be %d, the directory's number", n)})
		}
		if _, err := time.Parse(time.DateOnly, info.Published); err != nil {
			errs = append(errs, SetError{File: rel(vfile), Path: "published", Message: "must be a date (YYYY-MM-DD)"})
		}
		if len(info.Migrations) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, info.Migrations); err == nil {
				info.Migrations = buf.Bytes()
			}
		}
	}
	standards, serrs := loadStandards(fsys, vdir, rel)
	errs = append(errs, serrs...)
	names, _ := fs.Glob(fsys, vdir+"/*.json")
	sort.Strings(names)
	// decoded are the forms as read, their errors or not; forms the sound
	// ones (a form with errors by its fields alone, when they are sound).
	var forms, decoded []*Form
	fileOf := map[*Form]string{}
	nforms := 0
	for _, name := range names {
		if path.Base(name) == VersionFile || path.Base(name) == StandardsFile || path.Base(name) == VerificationFile || path.Base(name) == MonitoringFile ||
			path.Base(name) == DepartmentsFile || path.Base(name) == RegistriesFile {
			continue
		}
		nforms++
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, SetError{File: rel(name), Path: "$", Message: errText(err)})
			continue
		}
		f := &Form{}
		if p, msg := strictDecode(b, f); msg != "" {
			errs = append(errs, SetError{File: rel(name), Path: p, Message: msg})
			continue
		}
		f.file = rel(name)
		fileOf[f] = f.file
		decoded = append(decoded, f)
		if ferrs := f.load(); len(ferrs) > 0 {
			for _, fe := range ferrs {
				errs = append(errs, SetError{File: rel(name), Path: fe.Path, Message: fe.Message})
			}
			// Its fields alone, when they are sound, still serve the
			// checks of the other forms and of the migrations.
			f = &Form{Entity: f.Entity, Title: f.Title, Fields: f.Fields, Parent: f.Parent, ScopeField: f.ScopeField, file: f.file}
			if f.init() != nil {
				continue
			}
			fileOf[f] = f.file
		}
		forms = append(forms, f)
	}
	if nforms == 0 {
		errs = append(errs, SetError{File: strconv.Itoa(n), Path: "$", Message: "a version holds at least one form file (*.json)"})
	}
	// Across forms, every one read (a form with errors still names its
	// entity and its references): one file per entity, references to
	// known entities.
	byEntity := map[string]*Form{}
	for _, f := range decoded {
		if prev, dup := byEntity[f.Entity]; dup {
			errs = append(errs, SetError{File: fileOf[f], Path: "entity", Message: fmt.Sprintf("entity %q is defined in %s too", f.Entity, fileOf[prev])})
			continue
		}
		byEntity[f.Entity] = f
	}
	for _, f := range decoded {
		for i, fd := range f.Fields {
			if fd.Type == TypeReference && fd.Entity != "" && byEntity[fd.Entity] == nil {
				errs = append(errs, SetError{File: fileOf[f], Path: fmt.Sprintf("fields[%d].entity", i),
					Message: fmt.Sprintf("field %q: reference to unknown entity %q", fd.Name, fd.Entity)})
			}
		}
		if f.Parent != nil && byEntity[f.Parent.Entity] == nil {
			errs = append(errs, SetError{File: fileOf[f], Path: "parent.entity", Message: fmt.Sprintf("parent entity %q unknown", f.Parent.Entity)})
		}
	}
	if len(errs) > 0 {
		// The sound forms, for checking the migrations; the catalog is
		// not returned.
		var ok []*Form
		for _, f := range forms {
			if fileOf[byEntity[f.Entity]] == fileOf[f] && (f.Parent == nil || byEntity[f.Parent.Entity] != nil) {
				ok = append(ok, f)
			}
		}
		partial, _ := build(n, ok, standards)
		// The verification's own shape, its references to the forms
		// aside (they did not load).
		_, verrs := loadVerification(fsys, vdir, rel, nil)
		_, merrs := loadMonitoring(fsys, vdir, rel, nil, nil)
		_, rerrs := loadRegistries(fsys, vdir, rel, nil)
		return partial, info, append(append(append(errs, verrs...), merrs...), rerrs...)
	}
	sch, err := build(n, forms, standards)
	if err != nil {
		// Each error of the forms or their rules at its file and path.
		for _, e := range formErrors(err) {
			var fe *FormError
			var re *RuleError
			switch {
			case errors.As(e, &fe):
				errs = append(errs, SetError{File: fe.File, Path: fe.Path, Message: fe.Message})
			case errors.As(e, &re):
				errs = append(errs, SetError{File: re.File, Path: re.Path, Message: re.Message})
			default:
				errs = append(errs, SetError{File: strconv.Itoa(n), Path: "$", Message: e.Error()})
			}
		}
		return nil, info, errs
	}
	ver, verrs := loadVerification(fsys, vdir, rel, sch)
	against := ver
	if len(verrs) > 0 {
		// The guarantees' names are checked on their own then: the
		// verification's problems are reported already.
		against = &Verification{}
	}
	mon, merrs := loadMonitoring(fsys, vdir, rel, sch, against)
	reg, rerrs := loadRegistries(fsys, vdir, rel, sch)
	if len(verrs)+len(merrs)+len(rerrs) > 0 {
		return nil, info, append(append(verrs, merrs...), rerrs...)
	}
	sch.verification = ver
	sch.monitoring = mon
	sch.registries = reg
	return sch, info, nil
}

// formErrors lists the errors errors.Join joined in err, one by one.
func formErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, formErrors(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// loadStandards reads the version directory's StandardsFile, if it has
// one, and checks it; a set with problems is returned as nil with them.
func loadStandards(fsys fs.FS, vdir string, rel func(string) string) (*StandardSet, SetErrors) {
	name := path.Join(vdir, StandardsFile)
	b, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, SetErrors{{File: rel(name), Path: "$", Message: errText(err)}}
	}
	var set StandardSet
	if p, msg := strictDecode(b, &set); msg != "" {
		return nil, SetErrors{{File: rel(name), Path: p, Message: msg}}
	}
	var errs SetErrors
	for _, e := range set.check() {
		e.File = rel(name)
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &set, nil
}

// strictDecode decodes one JSON file into v, refusing unknown members and
// trailing data; on failure it returns the JSON path (or line and column)
// of the problem and a message.
func strictDecode(b []byte, v any) (string, string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return "$", "trailing data after the JSON value"
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &syn):
		line, col := lineCol(b, syn.Offset)
		return "$", fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, syn.Error())
	case errors.As(err, &typ):
		p := typ.Field
		if p == "" {
			p = "$"
		}
		return p, fmt.Sprintf("must be %s, not a JSON %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		var doc any
		p := "$"
		if json.Unmarshal(b, &doc) == nil {
			if found, ok := findKey(doc, "", name); ok {
				p = found
			}
		}
		return p, fmt.Sprintf("unknown member %q", name)
	default:
		return "$", errText(err)
	}
}

// findKey returns the JSON path of the first member named key in v.
func findKey(v any, at, key string) (string, bool) {
	switch v := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(v))
		for k := range v {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			p := k
			if at != "" {
				p = at + "." + k
			}
			if k == key {
				return p, true
			}
			if found, ok := findKey(v[k], p, key); ok {
				return found, true
			}
		}
	case []any:
		for i, e := range v {
			if found, ok := findKey(e, fmt.Sprintf("%s[%d]", at, i), key); ok {
				return found, true
			}
		}
	}
	return "", false
}

// lineCol returns the line and column of the byte a syntax error's
// offset (the bytes read, the bad one included) ends at.
func lineCol(b []byte, offset int64) (int, int) {
	offset--
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	if offset < 0 {
		offset = 0
	}
	line, col := 1, 1
	for _, c := range b[:offset] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + path.Base(pe.Path) + ": " + pe.Err.Error()
	}
	return err.Error()
}
