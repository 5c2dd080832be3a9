package api

import (
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// routes is the API's table of contents. Every /v1 route but the two token
// endpoints passes the authenticate gate; supervisor routes also need the
// role; every handler bounds what it reads or writes by the caller's scope
// through the Actor. (Routes carry their middleware themselves: an echo
// group with middleware answers 404 instead of 405 for a wrong method.)
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	if s.metricsRoute {
		e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	}
	e.GET("/v1/openapi.json", s.handleOpenAPI)

	e.POST("/v1/auth/token", s.handleToken)
	e.POST("/v1/auth/refresh", s.handleRefresh)

	anyone := []echo.MiddlewareFunc{s.authenticate}
	supervisor := []echo.MiddlewareFunc{s.authenticate, requireRole(syncproto.RoleSupervisor, syncproto.RoleAdmin)}
	// Tablets sync: a viewer (a department that reads) neither pushes nor
	// pulls. Readers read records, snapshots and reports, a viewer with
	// identity numbers masked (PermissionSeeIdentity).
	tablet := []echo.MiddlewareFunc{s.authenticate, requireRole(syncproto.RoleFieldWorker, syncproto.RoleSupervisor, syncproto.RoleAdmin)}
	reader := []echo.MiddlewareFunc{s.authenticate, requireRole(syncproto.RoleSupervisor, syncproto.RoleAdmin, syncproto.RoleViewer)}

	e.GET("/v1/schema", s.handleSchema, anyone...)
	e.POST("/v1/sync/push", s.handlePush, tablet...)
	e.GET("/v1/sync/pull", s.handlePull, tablet...)
	e.GET("/v1/sync/checksum", s.handleChecksum, tablet...)
	e.GET("/v1/sync/conflicts", s.handleSyncConflicts, tablet...)

	// Photos: any role uploads; a download needs a record in the caller's
	// scope that references the photo. The digest is everything after
	// /v1/attachments/, so that a path-like name reaches the handler's
	// check (400) instead of the router (404).
	// A viewer downloads (the photos its snapshots link) but uploads nothing.
	photos := []echo.MiddlewareFunc{s.authenticate, s.requirePhotos}
	uploads := append(slices.Clone(tablet), s.requirePhotos)
	e.POST("/v1/attachments/missing", s.handleMissing, uploads...)
	e.HEAD("/v1/attachments/*", s.handleUploadStatus, uploads...)
	e.PUT("/v1/attachments/*", s.handleUpload, uploads...)
	e.GET("/v1/attachments/*", s.handleDownload, photos...)

	e.GET("/v1/records/:entity/:id", s.handleRecord, reader...)
	e.GET("/v1/records/:entity/:id/history", s.handleHistory, reader...)
	e.POST("/v1/devices/:device_id/revoke", s.handleRevokeDevice, supervisor...)
	e.POST("/v1/devices/:device_id/outbox", s.handleReplayOutbox, supervisor...)
	e.GET("/v1/snapshot", s.handleSnapshot, reader...)
	e.GET("/v1/devices", s.handleDevices, supervisor...)
	e.GET("/v1/devices/:device_id/receipts", s.handleDeviceReceipts, supervisor...)
	e.GET("/v1/receipts/:changeset_id", s.handleReceipt, supervisor...)
	e.GET("/v1/conflicts", s.handleConflicts, supervisor...)
	e.POST("/v1/conflicts/:id/resolve", s.handleResolve, supervisor...)
	e.GET("/v1/quarantine", s.handleQuarantine, supervisor...)
	e.GET("/v1/duplicates", s.handleDuplicates, supervisor...)
	e.POST("/v1/duplicates/:id/merge", s.handleMergeDuplicate, supervisor...)
	e.POST("/v1/duplicates/:id/dismiss", s.handleDismissDuplicate, supervisor...)
	e.POST("/v1/quarantine/:id/close", s.handleCloseQuarantine, supervisor...)
	e.GET("/v1/reports/coverage", s.handleCoverage, reader...)
	e.GET("/v1/reports/verification", s.handleVerification, reader...)
	e.GET("/v1/followups", s.handleFollowups, reader...)
	e.GET("/v1/reports/exits", s.handleExits, reader...)
	e.GET("/v1/reports/reconciliation", s.handleReconciliation, reader...)
	e.POST("/v1/imports", s.handleImport, supervisor...)
	e.GET("/v1/reinspections", s.handleReinspections, reader...)

	// The supervisors' web console (server/console): HTML pages with a
	// sign-in of their own, outside the API (not in openapi.json).
	page := echo.WrapHandler(s.console)
	e.GET("/", page)
	e.Match([]string{"GET", "HEAD", "POST"}, "/console/*", page)
}
