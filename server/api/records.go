package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// handleHealthz is GET /healthz: the process is up.
func (s *Server) handleHealthz(c echo.Context) error {
	return writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz is GET /readyz: the database answers.
func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.reqLog(c).Warn("not ready", "err", err)
		return &syncproto.Error{Code: syncproto.EUnavailable, Message: "the database is not available"}
	}
	return writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
}

// lookupRecord resolves the :entity/:id path of the record endpoints.
func (s *Server) lookupRecord(c echo.Context) (*syncproto.StoredRecord, error) {
	if err := onlyParams(c.QueryParams()); err != nil {
		return nil, err
	}
	entity, id := c.Param("entity"), strings.ToLower(c.Param("id"))
	if s.schema.Form(entity) == nil {
		return nil, &syncproto.Error{Code: syncproto.ENotFound, Message: "no such entity",
			Errors: []syncproto.FieldError{{Path: "path.entity", Message: "must be one of " + strings.Join(s.schema.Entities(), ", ")}}}
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return nil, &syncproto.Error{Code: syncproto.ENotFound, Message: "no such record",
			Errors: []syncproto.FieldError{{Path: "path.id", Message: "must be a UUID"}}}
	}
	rec, err := s.store.Record(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if rec.Entity != entity {
		return nil, syncproto.Errorf(syncproto.ENotFound, "no %s with id %s", entity, id)
	}
	if !s.actor(c).InScope(rec.Village) {
		return nil, syncproto.Errorf(syncproto.EForbidden, "this record is outside your scope")
	}
	return rec, nil
}

// handleRecord is GET /v1/records/{entity}/{id}: the current state.
func (s *Server) handleRecord(c echo.Context) error {
	rec, err := s.lookupRecord(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, s.identityMask(c).record(rec))
}

// historyEntry is one version in GET .../history.
type historyEntry struct {
	Version int64  `json:"version"`
	Op      string `json:"op"`
	Cursor  string `json:"cursor"`
	User    string `json:"user"`
	// Department is the user's department when the version was made.
	Department  string                           `json:"department,omitempty"`
	Device      string                           `json:"device"`
	ServerTime  string                           `json:"server_time"`
	DeviceTime  string                           `json:"device_time"`
	ChangesetID string                           `json:"changeset_id,omitempty"`
	Flags       []string                         `json:"flags,omitempty"`
	Changes     map[string]syncproto.FieldChange `json:"changes"`
	Conflicts   []json.RawMessage                `json:"conflicts,omitempty"`
	Note        string                           `json:"note,omitempty"`
	// Replayed says who replayed the version's change set from an
	// exported outbox, and through which device (Device stays the tablet
	// that made the edit).
	Replayed json.RawMessage `json:"replayed,omitempty"`
	// SchemaVersion is the schema_version the change was sent in (absent
	// for versions recorded before it was kept); Sent its fields as sent
	// when they were migrated on arrival.
	SchemaVersion int                        `json:"schema_version,omitempty"`
	Sent          map[string]json.RawMessage `json:"sent,omitempty"`
}

// handleHistory is GET /v1/records/{entity}/{id}/history: every version,
// oldest first, with who, which device, when, what changed and the merge
// decisions that the version carried.
func (s *Server) handleHistory(c echo.Context) error {
	rec, err := s.lookupRecord(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	log, err := s.store.History(ctx, rec.ID)
	if err != nil {
		return err
	}
	conflicts, err := s.store.Conflicts(ctx, rec.ID)
	if err != nil {
		return err
	}
	mask := s.identityMask(c)
	byID := map[string]syncproto.ConflictEntry{}
	for i, cf := range conflicts {
		conflicts[i] = mask.conflict(cf)
		byID[cf.ID] = conflicts[i]
	}
	out := struct {
		Record   syncproto.Record `json:"record"`
		Versions []historyEntry   `json:"versions"`
		// Conflicts holds every decision on the record, including those
		// that made no version (a manual conflict, a losing value).
		Conflicts []map[string]any `json:"conflicts"`
	}{Record: mask.record(rec), Versions: make([]historyEntry, 0, len(log)), Conflicts: []map[string]any{}}
	for _, cf := range conflicts {
		out.Conflicts = append(out.Conflicts, conflictJSON(cf))
	}
	for _, e := range log {
		h := historyEntry{Version: e.Version, Op: e.Op, Cursor: s.cursors.Encode(syncproto.Cursor{Seq: e.Seq}), User: e.UserID, Department: e.Department,
			Device: e.DeviceID, ServerTime: syncproto.FormatTime(e.ServerAt), DeviceTime: syncproto.FormatTime(e.DeviceAt),
			ChangesetID: e.ChangesetID, Flags: e.Flags, Changes: mask.changes(rec.Entity, e.Changes), Note: e.Note, Replayed: replayJSON(e.Replay),
			SchemaVersion: e.SchemaVersion, Sent: e.Sent}
		if mask.on && e.Sent != nil {
			// What an older tablet sent, in its version's fields: the
			// identity fields keep their names in every version.
			h.Sent = mask.sch.MaskIdentities(rec.Entity, e.Sent)
		}
		for _, id := range e.ConflictIDs {
			if cf, ok := byID[id]; ok {
				b, _ := json.Marshal(conflictJSON(cf))
				h.Conflicts = append(h.Conflicts, b)
			}
		}
		out.Versions = append(out.Versions, h)
	}
	return writeJSON(c, http.StatusOK, out)
}

// conflictJSON renders a recorded decision.
func conflictJSON(cf syncproto.ConflictEntry) map[string]any {
	out := map[string]any{"conflict_id": cf.ID, "entity": cf.Entity, "record_id": cf.RecordID, "village": cf.Village,
		"field": cf.Field, "policy": cf.Policy, "stored": cf.Stored, "incoming": cf.Incoming, "kept": cf.Kept,
		"state": cf.State, "device": cf.DeviceID, "user": cf.UserID, "device_time": syncproto.FormatTime(cf.DeviceAt),
		"created_at": syncproto.FormatTime(cf.CreatedAt), "version": cf.Version}
	if cf.HouseholdName != "" {
		out["household_name"] = cf.HouseholdName
	}
	if cf.Department != "" {
		out["department"] = cf.Department
	}
	if cf.StoredDepartment != "" {
		out["stored_department"] = cf.StoredDepartment
	}
	if r := cf.Resolved; r != nil {
		out["resolution"] = map[string]any{"value": r.Value, "note": r.Note, "by": r.By, "device": r.Device,
			"at": syncproto.FormatTime(r.At), "version": r.Version}
	}
	return out
}
