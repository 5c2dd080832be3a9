package api

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// handleExits is GET /v1/reports/exits?region=&flag=&limit=&cursor=: the
// decided values of the region's households as the change log recorded
// them (syncproto.Store.FlaggedVersions), oldest first, in pages: each
// decided exit and each override, with who, when, the verdict of that
// moment, and the override note for a caller who may see personal data
// (PermissionSeeIdentity; a viewer gets override_note_hidden instead).
// flag narrows the list to decided, override or registered (the
// households registered with a decided value, listed only when asked).
func (s *Server) handleExits(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "flag", "limit", "cursor"); err != nil {
		return err
	}
	actor, _, err := s.regionScope(c)
	if err != nil {
		return err
	}
	flags := syncproto.ExitFlags
	switch f := c.QueryParam("flag"); f {
	case "":
	case syncproto.FlagDecided, syncproto.FlagOverride, syncproto.FlagRegistered:
		flags = []string{f}
	default:
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid flag", Message: "flag must be decided, override or registered",
			Errors: []syncproto.FieldError{{Path: "query.flag", Message: "must be decided, override or registered"}}}
	}
	seeNote := s.actor(c).Can(syncproto.PermissionSeeIdentity)
	return writeListPage(s, c, "exits", "exits", func(ctx context.Context, after int64, limit int) ([]syncproto.FlaggedVersion, int64, error) {
		return s.store.FlaggedVersions(ctx, actor, flags, after, limit)
	}, func(v syncproto.FlaggedVersion) map[string]any { return s.exitJSON(v, seeNote) })
}

// exitJSON is one exit of the list: the override note only for a caller
// who may see it (the note is the form's personal data).
func (s *Server) exitJSON(v syncproto.FlaggedVersion, seeNote bool) map[string]any {
	e := syncproto.ExitOf(s.schema, v)
	out := map[string]any{"household": e.Household, "village": e.Village, "entity": v.Entity, "version": v.Version,
		"field": e.Field, "value": e.Value, "flag": e.Flag, "by": e.By, "device": e.Device, "at": syncproto.FormatTime(e.At),
		"op": e.Op, "decision": e.Decision, "verdict": nil}
	if e.Verdict != "" {
		by := e.BlockedBy
		if by == nil {
			by = []string{}
		}
		out["verdict"] = map[string]any{"overall": e.Verdict, "blocked_by": by, "as_of": e.AsOf}
	}
	if e.ChangesetID != "" {
		out["changeset_id"] = e.ChangesetID
	}
	if len(e.ConflictIDs) > 0 {
		out["conflict_ids"] = e.ConflictIDs
	}
	if e.OverrideNote != "" {
		if seeNote {
			out["override_note"] = e.OverrideNote
		} else {
			out["override_note_hidden"] = true
		}
	}
	return out
}
