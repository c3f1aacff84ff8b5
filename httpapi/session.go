package httpapi

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"github.com/sessiond/sessiond"
)

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (c credentials) valid() error {
	return required([2]string{"email", c.Email}, [2]string{"password", c.Password})
}

// loginRequest is credentials plus the device token an earlier login on this
// device returned, if the client kept it (in cookie mode it comes as a cookie).
type loginRequest struct {
	credentials
	DeviceToken string `json:"device_token,omitempty"`
}

func (r loginRequest) deviceToken() string { return r.DeviceToken }

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (r refreshRequest) valid() error { return required([2]string{"refresh_token", r.RefreshToken}) }

// tokenResponse uses the names of RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshToken     string `json:"refresh_token,omitempty"` // empty in cookie mode
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	SessionID        string `json:"session_id"`
	// DeviceToken is sent back by the client at its next login for the
	// same email; empty in cookie mode, where it is a cookie.
	DeviceToken string `json:"device_token,omitempty"`
}

func newTokenResponse(t *sessiond.Tokens) tokenResponse {
	return tokenResponse{
		AccessToken:      t.AccessToken,
		TokenType:        tokenType(t),
		ExpiresIn:        seconds(t.AccessExpiresAt.Sub(t.IssuedAt)),
		RefreshToken:     t.RefreshToken,
		RefreshExpiresIn: seconds(t.RefreshExpiresAt.Sub(t.IssuedAt)),
		SessionID:        t.SessionID,
		DeviceToken:      t.DeviceToken,
	}
}

// tokenType is "DPoP" for the tokens of a session bound to a DPoP key
// (RFC 9449 §5), which work only with proofs by it, "Bearer" otherwise.
func tokenType(t *sessiond.Tokens) string {
	if t.DPoPJKT != "" {
		return "DPoP"
	}
	return "Bearer"
}

// seconds rounds up: the exp claim is whole seconds, so an AT issued at 12:00:00.3
// for 15 minutes expires at 12:15:00, and says 900, not 899.
func seconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// verificationSent is signup's answer when addresses must be confirmed,
// the same for a new address and a taken one.
var verificationSent = struct {
	Status string `json:"status"`
}{"verification_sent"}

func handleSignup(logger *slog.Logger, svc sessiond.AuthService, trusted []netip.Prefix) http.Handler {
	type response struct {
		UserID    string    `json:"user_id"`
		Email     string    `json:"email"`
		CreatedAt time.Time `json:"created_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[credentials](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := svc.Signup(r.Context(), req.Email, req.Password, clientInfo(r, trusted))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if u == nil { // addresses must be confirmed: the answer reveals nothing
			encode(w, http.StatusAccepted, verificationSent)
			return
		}
		encode(w, http.StatusCreated, response{UserID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt})
	})
}

func handleLogin(logger *slog.Logger, svc sessiond.AuthService, trusted []netip.Prefix, bd browserDeps) http.Handler {
	return loginHandler(logger, trusted, bd, func(ctx context.Context, req loginRequest, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
		return svc.Login(ctx, req.Email, req.Password, c)
	})
}

// loginHandler answers every request that opens a session (a password
// login, its second step, a passkey sign-in) alike, cookie mode included:
// the cross-site checks before any credential is looked at, the device
// token from the body or its cookie, the cookies set after.
func loginHandler[R interface {
	validator
	deviceToken() string
}](logger *slog.Logger, trusted []netip.Prefix, bd browserDeps, login func(context.Context, R, sessiond.ClientInfo) (*sessiond.Tokens, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Cookie mode (cookie.go): checked before the password is.
		bd.b.clearLegacyCookies(w, r)
		viaCookie := wantsCookie(r)
		if viaCookie {
			if err := bd.b.checkCSRF(bd.cop, r); err != nil {
				writeError(w, r, logger, err)
				return
			}
		}
		req, err := decode[R](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		c := clientInfo(r, trusted)
		if c.DPoP, err = bd.dp.proof(r); err != nil {
			writeError(w, r, logger, err)
			return
		}
		c.DeviceToken = req.deviceToken()
		if c.DeviceToken == "" {
			c.DeviceToken = bd.b.deviceCookie(r)
		}
		t, err := login(r.Context(), req, c)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if viaCookie {
			bd.b.setRefreshCookies(w, t)
			bd.b.setDeviceCookie(w, t)
		}
		encode(w, http.StatusOK, tokenBody(t, viaCookie))
	})
}

func handleRefresh(logger *slog.Logger, svc sessiond.AuthService, bd browserDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Cookie mode (cookie.go): the RT from the body, else from the cookie.
		bd.b.clearLegacyCookies(w, r)
		tok, viaCookie, ok, err := bd.b.bodyOrCookieToken(bd.cop, w, r)
		if !ok {
			var req refreshRequest
			req, err = decode[refreshRequest](w, r)
			tok = req.RefreshToken
		}
		if err == nil && !viaCookie && wantsCookie(r) {
			err, viaCookie = bd.b.checkCSRF(bd.cop, r), true
		}
		var proof sessiond.DPoPProof
		if err == nil {
			proof, err = bd.dp.proof(r)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		t, err := svc.Refresh(r.Context(), tok, proof)
		if err != nil {
			if viaCookie && clearsCookie(err) {
				bd.b.clearRefreshCookies(w)
			}
			writeError(w, r, logger, err)
			return
		}
		if viaCookie {
			bd.b.setRefreshCookies(w, t)
		}
		encode(w, http.StatusOK, tokenBody(t, viaCookie))
	})
}

// handleLogout ends one session: the Bearer AT's, or the body RT's, or the
// cookie's (cookie.go). A logout with the cookie clears it even when the
// session had already ended, so the browser is left with nothing stale. A
// Bearer logout that succeeds clears a cookie the request carries too: the
// browser signed out and must not keep a refresh token.
func handleLogout(logger *slog.Logger, svc sessiond.AuthService, bd browserDeps) http.Handler {
	byToken := bearer(logger, svc, bd.dp, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.Logout(r.Context(), principalFrom(r.Context())); err != nil {
			writeError(w, r, logger, err)
			return
		}
		if bd.b.hasRefreshCookie(r) {
			bd.b.clearRefreshCookies(w)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bd.b.clearLegacyCookies(w, r)
		if r.Header.Get("Authorization") != "" {
			byToken.ServeHTTP(w, r)
			return
		}
		tok, viaCookie, ok, err := bd.b.bodyOrCookieToken(bd.cop, w, r)
		if !ok {
			var req refreshRequest
			req, err = decode[refreshRequest](w, r)
			tok = req.RefreshToken
		}
		var proof sessiond.DPoPProof
		if err == nil {
			proof, err = bd.dp.proof(r)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		err = svc.LogoutRefresh(r.Context(), tok, proof)
		if viaCookie && (err == nil || clearsCookie(err)) {
			bd.b.clearRefreshCookies(w)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleMe(logger *slog.Logger, svc sessiond.AuthService) http.Handler {
	type response struct {
		UserID        string `json:"user_id"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		SessionID     string `json:"session_id"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		u, err := svc.Me(r.Context(), p)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, response{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, SessionID: p.SessionID})
	})
}
