package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/sessiond/sessiond"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

// requestID tags each request with an id, echoed in X-Request-Id and in logs.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// recoverer is the last line of defence: a panic is logged with its stack and
// answered as a problem, and the server keeps serving.
func recoverer(logger *slog.Logger, m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				m.panicked()
				logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("request_id", requestIDFrom(r.Context())),
					slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				writeError(w, r, logger, sessiond.Errorf(sessiond.CodeInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
