// Package server is the home of fieldsync's adapters, one package each:
//
//	cmd/fieldsync  main: signals, then cli.Run
//	cli            the fieldsync command: one file per command, config, progress
//	api            the echo HTTP adapter (routes.go is the API's table of contents)
//	export         snapshot and report encoders (NDJSON, CSV, GeoJSON, XLSX), for api and cli
//	bench          the load generator, through the store contract and the client only
//	apitest        the test harness: a real router on a temporary database
//	auth           identity: password hashing, signing keys, token claims, rate limits
//	attachments    the photo store
//	sqlite         the SQLite store
//	storetest      the store contract's test suite
//
// This package holds no code: layout_test.go holds the import rules that
// keep the cut, one rule a row (echo only in api; no SQL or HTTP in the
// domain; api over the store contract, never a store; export without HTTP;
// bench past no store; cli imported by main alone, apitest by tests alone).
package server
