package server

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// regionScope returns the scope a supervisor endpoint works in: the
// region= parameter (a division-code prefix of 2 to 12 digits), which must
// lie inside the caller's scope (403 otherwise), or the caller's whole scope
// when it is absent. The returned Actor carries the caller's identity with
// Scope narrowed to that region, so that store queries filter by it; region
// is the prefix asked for ("" when absent).
func (s *Server) regionScope(c echo.Context) (actor syncproto.Actor, region string, err error) {
	actor = s.actor(c)
	region = strings.TrimSpace(c.QueryParam("region"))
	if region == "" {
		return actor, "", nil
	}
	if len(region) < 2 || len(region) > 12 || !schema.IsDigits(region) {
		return actor, "", &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid region",
			Message: "region must be a division-code prefix of 2 to 12 digits",
			Errors:  []syncproto.FieldError{{Path: "query.region", Message: "must be 2 to 12 digits"}}}
	}
	if !actor.InScope(region) {
		return actor, "", &syncproto.Error{Code: syncproto.EForbidden, Title: "Outside your scope",
			Message: "region " + region + " is not inside your scope",
			Errors:  []syncproto.FieldError{{Path: "query.region", Message: "is outside your scope"}}}
	}
	actor.Scope, actor.AllRegions = []string{region}, false
	return actor, region, nil
}
