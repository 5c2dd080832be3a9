// Package syncproto holds the wire types of the fieldsync sync protocol v1,
// their decoding and validation, the per-field merge rules and the push
// algorithm, as pure code: no HTTP and no SQL. Stores implement the Store
// contract (store.go) and make no decision: the PushService (push.go) runs
// the push inside the one batched write a store offers (PushStore.WritePush),
// the SupervisionService (supervision.go) the supervisors' decisions inside
// one WriteSupervision, and the ReportService (report.go) applies package
// survey's rules to the one stream of households a store reads
// (ReportStore.HouseholdInspections). The services own the schema and the
// clock; the server gives all three the same.
package syncproto

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// TimeLayout is the wire format of times: RFC 3339, milliseconds, UTC.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime renders t in the wire format.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Ops of a change.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Result statuses of a change, as PROTOCOL.md defines them.
const (
	StatusApplied  = "applied"
	StatusMerged   = "merged"
	StatusConflict = "conflict"
	StatusRejected = "rejected"
)

// Conflict states.
const (
	StateOpen         = "open"
	StateAutoResolved = "auto_resolved"
	StateResolved     = "resolved"
)

// FieldDeleted is the pseudo-field under which a contested deletion is
// recorded as a conflict.
const FieldDeleted = "_deleted"

// FlagClockClamped marks a change whose device time was more than MaxSkew
// ahead of the server and was clamped to the server's clock.
const FlagClockClamped = "clock_clamped"

// MaxSkew is how far ahead of the server's clock a device time may be.
const MaxSkew = 5 * time.Minute

// Changeset is the body of POST /v1/sync/push.
type Changeset struct {
	ChangesetID   string   `json:"changeset_id"`
	DeviceID      string   `json:"device_id"`
	DeviceSeq     int64    `json:"device_seq"`
	SchemaVersion int      `json:"schema_version"`
	Changes       []Change `json:"changes"`
}

// Change is one record edit inside a change set. Fields holds only the
// fields the device changed.
type Change struct {
	Entity      string                     `json:"entity"`
	ID          string                     `json:"id"`
	Op          string                     `json:"op"`
	BaseVersion int64                      `json:"base_version"`
	At          string                     `json:"at"`
	Fields      map[string]json.RawMessage `json:"fields,omitempty"`
}

// PushResponse is the answer to a push, stored under the change set id and
// returned again, with Replayed set, for every retry.
type PushResponse struct {
	ChangesetID string         `json:"changeset_id"`
	Replayed    bool           `json:"replayed"`
	Cursor      string         `json:"cursor"`
	Results     []ChangeResult `json:"results"`
}

// ChangeResult is the outcome of one change.
type ChangeResult struct {
	ID        string           `json:"id"`
	Status    string           `json:"status"`
	Version   int64            `json:"version,omitempty"`
	Conflicts []ConflictReport `json:"conflicts,omitempty"`
	Errors    []FieldError     `json:"errors,omitempty"`
	Flags     []string         `json:"flags,omitempty"`
}

// ConflictReport is one concurrent-edit decision. Kept is the value the
// record holds after the decision, Incoming the value this change sent and
// Stored the value the record held before it.
type ConflictReport struct {
	ConflictID string          `json:"conflict_id"`
	Field      string          `json:"field"`
	Policy     string          `json:"policy"`
	Kept       json.RawMessage `json:"kept"`
	Incoming   json.RawMessage `json:"incoming"`
	Stored     json.RawMessage `json:"stored"`
	State      string          `json:"state"`
}

// Record is the current state of a record as pull and the record endpoints
// serve it. A record that left the caller's scope is sent as
// {"entity", "id", "removed": true}.
type Record struct {
	Entity     string                     `json:"entity"`
	ID         string                     `json:"id"`
	Version    int64                      `json:"version,omitempty"`
	Fields     map[string]json.RawMessage `json:"fields,omitempty"`
	Deleted    bool                       `json:"deleted,omitempty"`
	Removed    bool                       `json:"removed,omitempty"`
	MergedInto string                     `json:"merged_into,omitempty"`
	UpdatedAt  string                     `json:"updated_at,omitempty"`
	UpdatedBy  string                     `json:"updated_by,omitempty"`
	// Flags mark a record pulled in an older schema version that cannot
	// hold it whole (FlagNotExpressible); absent otherwise.
	Flags []string `json:"flags,omitempty"`
	// RawFields, when set, is the fields object as the server stores it,
	// written instead of Fields by AppendJSON and MarshalJSON (the server
	// passes stored records through without decoding them). Never sent as
	// such, never set by decoding.
	RawFields json.RawMessage `json:"-"`
}

// PullResponse is the answer to GET /v1/sync/pull.
type PullResponse struct {
	Records []Record `json:"records"`
	Cursor  string   `json:"cursor"`
	HasMore bool     `json:"has_more"`
}

// Roles of PROTOCOL.md, and RoleViewer, which v1 does not know.
const (
	RoleFieldWorker = "field_worker"
	RoleSupervisor  = "supervisor"
	RoleAdmin       = "admin"
	// RoleViewer reads the records, snapshots and reports of its scope (a
	// department that follows the work) and changes nothing: it neither
	// pushes nor pulls, and sees identity numbers masked.
	RoleViewer = "viewer"
)

// PermissionSeeIdentity is the right to see identity numbers (the fields a
// form declares "personal": "identity") in full in snapshots, exports,
// records and their history; without it they are masked
// (schema.MaskIdentity). Tablets get them in full in their pulls: the
// team needs them in the field.
const PermissionSeeIdentity = "see_identity"

// rolePermissions are the permissions each role has beyond its routes.
var rolePermissions = map[string][]string{
	RoleAdmin:      {PermissionSeeIdentity},
	RoleSupervisor: {PermissionSeeIdentity},
}

// Can reports whether the actor's role has the permission.
func (a Actor) Can(permission string) bool {
	for _, p := range rolePermissions[a.Role] {
		if p == permission {
			return true
		}
	}
	return false
}

// Actor is who makes a request: the authenticated user and device, their
// role and region scope. The push algorithm records the actor, never a value
// the client merely claims.
type Actor struct {
	UserID   string
	DeviceID string
	Role     string
	// Scope lists division-code prefixes the actor may read and change.
	Scope []string
	// AllRegions grants every region (administrators, the demo loader).
	// An actor without it and with an empty Scope may touch nothing.
	AllRegions bool
	// Department is the actor's user's department (departments.json), or
	// "": the change log records it with each change.
	Department string
}

// InScope reports whether a division code lies in the actor's scope.
func (a Actor) InScope(code string) bool {
	if a.AllRegions {
		return true
	}
	for _, p := range a.Scope {
		if p != "" && len(code) >= len(p) && code[:len(p)] == p {
			return true
		}
	}
	return false
}

// Covers reports whether every region of scope lies inside the actor's
// scope (a supervisor acting on a tablet whose user works in scope).
func (a Actor) Covers(scope []string) bool {
	if a.AllRegions {
		return true
	}
	if len(scope) == 0 {
		return false
	}
	for _, p := range scope {
		if !a.InScope(p) {
			return false
		}
	}
	return true
}

// ScopeKey is the canonical form of the actor's scope: "*" for every
// region, otherwise the sorted prefixes joined by commas. Pull cursors carry
// it, so that a pull under a changed scope is recognised.
func (a Actor) ScopeKey() string {
	if a.AllRegions {
		return "*"
	}
	return ScopeKey(a.Scope)
}

// ScopeKey returns the canonical form of a list of prefixes.
func ScopeKey(prefixes []string) string {
	ps := append([]string(nil), prefixes...)
	sort.Strings(ps)
	out := ps[:0]
	for i, p := range ps {
		if p != "" && (i == 0 || p != ps[i-1]) {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// ActorForScopeKey returns an actor whose scope is the one a ScopeKey names.
func ActorForScopeKey(key string) Actor {
	if key == "*" {
		return Actor{AllRegions: true}
	}
	if key == "" {
		return Actor{}
	}
	return Actor{Scope: strings.Split(key, ",")}
}
