package server

// routes is the API's table of contents.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)

	v1 := e.Group("/v1")
	v1.GET("/schema", s.handleSchema)
	v1.POST("/sync/push", s.handlePush)
	v1.GET("/sync/pull", s.handlePull)
	v1.GET("/records/:entity/:id", s.handleRecord)
	v1.GET("/records/:entity/:id/history", s.handleHistory)
}
