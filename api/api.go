// Package api holds sessiond's HTTP API description, openapi.yaml (OpenAPI
// 3.1), embedded so that the server can publish it at GET /openapi.yaml and
// the end-to-end tests can check every request and response against it.
// Start reading at openapi.yaml; docs/API.md is the prose version.
package api

import _ "embed"

// Spec is openapi.yaml, the OpenAPI 3.1 description of the whole HTTP API.
//
//go:embed openapi.yaml
var Spec []byte
