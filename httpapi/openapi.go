package httpapi

import (
	"net/http"

	"github.com/sessiond/sessiond/api"
)

// handleOpenAPI publishes the API description the server is tested against,
// so a client generator or a curious operator can fetch the one that matches
// this build.
func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml") // RFC 9512
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(api.Spec)
	})
}
