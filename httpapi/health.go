package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
)

func handleJWKS(keys JWKSSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		// Short: verifiers refetch on an unknown kid anyway, and a retired
		// key must be able to leave caches once its tokens have expired.
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write(keys.JWKS())
	})
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz reports ready only when the database answers.
func handleReadyz(logger *slog.Logger, db Pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			if sessiond.ErrorCode(err) != sessiond.CodeUnavailable {
				err = sessiond.Unavailable("ping database", err)
			}
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
