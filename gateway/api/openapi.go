package api

import _ "embed"

// OpenAPI is the OpenAPI 3 description of the API (openapi.yaml), which
// the gateway also serves at /api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
