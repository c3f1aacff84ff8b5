package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sessiond/sessiond"
)

// maxTokenLen bounds an Authorization header's token before any parsing.
const maxTokenLen = 4096

// bearer admits requests with a valid access token whose session is live,
// and puts the principal into the request context.
func bearer(logger *slog.Logger, svc sessiond.AuthService, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := bearerToken(r.Header.Get("Authorization"))
		var p *sessiond.Principal
		if err == nil {
			p, err = svc.Authenticate(r.Context(), tok)
		}
		if err != nil {
			if sessiond.ErrorCode(err) == sessiond.CodeInvalidToken {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			writeError(w, r, logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// bearerToken extracts the token of an RFC 6750 "Bearer" Authorization header.
func bearerToken(h string) (string, error) {
	scheme, tok, ok := strings.Cut(h, " ")
	switch {
	case h == "":
		return "", sessiond.Errorf(sessiond.CodeInvalidToken, "missing Authorization: Bearer header")
	case !ok || !strings.EqualFold(scheme, "Bearer"):
		return "", sessiond.Errorf(sessiond.CodeInvalidToken, "Authorization must be \"Bearer <token>\"")
	case tok == "" || strings.ContainsAny(tok, " \t"):
		return "", sessiond.Errorf(sessiond.CodeInvalidToken, "Authorization must be \"Bearer <token>\"")
	case len(tok) > maxTokenLen:
		return "", sessiond.Errorf(sessiond.CodeInvalidToken, "token is too long")
	}
	return tok, nil
}

func principalFrom(ctx context.Context) *sessiond.Principal {
	p, _ := ctx.Value(principalKey).(*sessiond.Principal)
	return p
}
