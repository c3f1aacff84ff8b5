package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/sessiond/sessiond"
)

// codeMethodNotAllowed is a code only the HTTP layer produces (so are
// cookie.go's codeCrossSite and codeCookieModeOff).
const codeMethodNotAllowed = "method_not_allowed"

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	sessiond.CodeInvalidRequest:      http.StatusBadRequest,
	sessiond.CodeInvalidCredentials:  http.StatusUnauthorized,
	sessiond.CodeInvalidToken:        http.StatusUnauthorized,
	sessiond.CodeInvalidRefreshToken: http.StatusUnauthorized,
	sessiond.CodeRefreshTokenReused:  http.StatusUnauthorized,
	sessiond.CodeSessionExpired:      http.StatusUnauthorized,
	sessiond.CodeInvalidDPoPProof:    http.StatusUnauthorized,
	sessiond.CodeUseDPoPNonce:        http.StatusUnauthorized,
	sessiond.CodeNotFound:            http.StatusNotFound,
	codeMethodNotAllowed:             http.StatusMethodNotAllowed,
	codeCrossSite:                    http.StatusForbidden,
	codeCookieModeOff:                http.StatusBadRequest,
	sessiond.CodeEmailTaken:          http.StatusConflict,
	sessiond.CodeRequestTooLarge:     http.StatusRequestEntityTooLarge,
	sessiond.CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	sessiond.CodeInvalidEmail:        http.StatusUnprocessableEntity,
	sessiond.CodeWeakPassword:        http.StatusUnprocessableEntity,
	sessiond.CodeTooManyAttempts:     http.StatusTooManyRequests,
	sessiond.CodeRateLimited:         http.StatusTooManyRequests,
	sessiond.CodeUnavailable:         http.StatusServiceUnavailable,
	sessiond.CodeInternal:            http.StatusInternalServerError,
	sessiond.CodeAccountDisabled:     http.StatusForbidden,
	sessiond.CodeInvalidLink:         http.StatusBadRequest,
	sessiond.CodeEmailNotVerified:    http.StatusForbidden,
	sessiond.CodeMFARequired:         http.StatusForbidden,
	sessiond.CodeReauthRequired:      http.StatusForbidden,
}

// problem is an RFC 9457 problem document with sessiond's stable code.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// writeError answers err as problem+json. Errors without a code are logged
// with the request id and shown as a generic internal error; so are
// unavailable ones, whose cause a client must not see either.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := sessiond.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 && logger != nil {
		msg, level := "request failed", slog.LevelError
		if r.Context().Err() != nil && (errors.Is(err, context.Canceled) || code == sessiond.CodeUnavailable) {
			// The client hung up and the work was abandoned for it: nothing
			// failed on sessiond's side, and nobody reads this answer.
			msg, level = "request abandoned by the client", slog.LevelDebug
		}
		logger.LogAttrs(r.Context(), level, msg,
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("code", code), slog.String("error", err.Error()))
	}
	var e *sessiond.Error
	if !errors.As(err, &e) {
		e = nil
	}
	if e != nil && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1e9)))
	}
	setProblemCode(w, code)
	p := problem{
		Type:   "urn:sessiond:problem:" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: sessiond.ErrorMessage(err),
		Code:   code,
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if e != nil && len(e.Extra) > 0 && status < 500 {
		json.NewEncoder(w).Encode(withExtensions(p, e.Extra))
		return
	}
	json.NewEncoder(w).Encode(p)
}

// withExtensions is p with extension members (RFC 9457 §3.2) beside its
// own; a member that would replace one of p's is dropped.
func withExtensions(p problem, extra map[string]any) map[string]any {
	out := make(map[string]any, len(extra)+5)
	for k, v := range extra {
		out[k] = v
	}
	out["type"], out["title"], out["status"], out["code"] = p.Type, p.Title, p.Status, p.Code
	if p.Detail != "" {
		out["detail"] = p.Detail
	} else {
		delete(out, "detail")
	}
	return out
}
