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
// and puts the principal into the request context. An unbound token comes
// with the Bearer scheme (RFC 6750); a token bound to a DPoP key with the
// DPoP scheme and a proof by that key (RFC 9449 §7). This is the one place
// the API authenticates an access token.
func bearer(logger *slog.Logger, svc sessiond.AuthService, dp dpopDeps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, err := accessToken(r.Header.Get("Authorization"))
		var p *sessiond.Principal
		if err == nil {
			var proof *sessiond.DPoPProof
			if scheme == schemeDPoP {
				var pr sessiond.DPoPProof
				if pr, err = dp.proof(r); err == nil {
					proof = &pr
				}
			}
			if err == nil {
				p, err = svc.Authenticate(r.Context(), tok, proof)
			}
		}
		if err != nil {
			switch code := sessiond.ErrorCode(err); code {
			case sessiond.CodeInvalidToken:
				// Either scheme could be what the client needs.
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				setDPoPChallenge(w, code, "")
			case sessiond.CodeInvalidDPoPProof, sessiond.CodeUseDPoPNonce:
				setDPoPChallenge(w, code, "")
			}
			writeError(w, r, logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// The Authorization schemes of an access token.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// accessToken extracts the scheme (schemeBearer or schemeDPoP, matched
// without regard to case) and token of an Authorization header.
func accessToken(h string) (scheme, token string, err error) {
	scheme, tok, ok := strings.Cut(h, " ")
	bad := sessiond.Errorf(sessiond.CodeInvalidToken, "Authorization must be \"Bearer <token>\", or \"DPoP <token>\" with a DPoP proof")
	switch {
	case h == "":
		return "", "", sessiond.Errorf(sessiond.CodeInvalidToken, "missing Authorization: Bearer header")
	case !ok:
		return "", "", bad
	case strings.EqualFold(scheme, schemeBearer):
		scheme = schemeBearer
	case strings.EqualFold(scheme, schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", bad
	}
	switch {
	case tok == "" || strings.ContainsAny(tok, " \t"):
		return "", "", bad
	case len(tok) > maxTokenLen:
		return "", "", sessiond.Errorf(sessiond.CodeInvalidToken, "token is too long")
	}
	return scheme, tok, nil
}

func principalFrom(ctx context.Context) *sessiond.Principal {
	p, _ := ctx.Value(principalKey).(*sessiond.Principal)
	return p
}

// bearerToken extracts the token of an RFC 6750 "Bearer" Authorization
// header, as admin keys come.
func bearerToken(h string) (string, error) {
	scheme, tok, err := accessToken(h)
	if err == nil && scheme != schemeBearer {
		err = sessiond.Errorf(sessiond.CodeInvalidToken, "Authorization must be \"Bearer <token>\"")
	}
	return tok, err
}
