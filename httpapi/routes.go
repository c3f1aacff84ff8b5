package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/sessiond/sessiond"
)

// route is one endpoint: its ServeMux pattern ("METHOD /path") and handler.
type route struct {
	pattern string
	handler http.Handler
}

// Routes lists the pattern of every endpoint the server can serve, the
// optional ones (the account page) included, in the order of
// routeTable. docs/API.md and api/openapi.yaml are tested against it.
func Routes() []string {
	var out []string
	for _, r := range routeTable(Deps{Account: http.NotFoundHandler()}) {
		out = append(out, r.pattern)
	}
	return out
}

// routeTable is the whole API in one place (docs/API.md).
func routeTable(d Deps) []route {
	bd := newBrowserDeps(d) // cookie mode, cookie.go
	var acc sessiond.AccountService = noAccounts{}
	if d.Accounts != nil {
		acc = d.Accounts
	}
	var mfa sessiond.MFAService = noMFA{}
	if d.MFA != nil {
		mfa = d.MFA
	}
	var pk sessiond.PasskeyService = noPasskeys{}
	if d.Passkeys != nil {
		pk = d.Passkeys
	}
	routes := []route{
		{"POST /v1/signup", handleSignup(d.Logger, d.Auth, d.TrustedProxies)},
		{"POST /v1/login", handleLogin(d.Logger, d.Auth, d.TrustedProxies, bd)},
		{"POST /v1/refresh", handleRefresh(d.Logger, d.Auth, bd)},
		{"POST /v1/logout", handleLogout(d.Logger, d.Auth, bd)},
		{"POST /v1/logout-all", bearer(d.Logger, d.Auth, bd.dp, handleLogoutAll(d.Logger, d.Auth))},
		{"GET /v1/sessions", bearer(d.Logger, d.Auth, bd.dp, handleListSessions(d.Logger, d.Auth))},
		{"DELETE /v1/sessions/{id}", bearer(d.Logger, d.Auth, bd.dp, handleRevokeSession(d.Logger, d.Auth))},
		{"GET /v1/me", bearer(d.Logger, d.Auth, bd.dp, handleMe(d.Logger, d.Auth))},
		{"POST /v1/password/forgot", handleForgotPassword(d.Logger, acc, d.TrustedProxies)}, // account.go
		{"POST /v1/password/reset", handleResetPassword(d.Logger, acc, d.TrustedProxies)},
		{"POST /v1/email/verify", handleVerifyEmail(d.Logger, acc, d.TrustedProxies)},
		{"POST /v1/email/verify/resend", bearer(d.Logger, d.Auth, bd.dp, handleResendVerification(d.Logger, acc, d.TrustedProxies))},
		{"POST /v1/password", bearer(d.Logger, d.Auth, bd.dp, handleChangePassword(d.Logger, acc, d.TrustedProxies))},
		{"POST /v1/email", bearer(d.Logger, d.Auth, bd.dp, handleChangeEmail(d.Logger, acc, d.TrustedProxies))},
		{"DELETE /v1/me", bearer(d.Logger, d.Auth, bd.dp, handleDeleteAccount(d.Logger, acc, d.TrustedProxies))},
		{"POST /v1/reauthenticate", bearer(d.Logger, d.Auth, bd.dp, handleReauthenticate(d.Logger, acc, d.TrustedProxies))},
		{"POST /v1/login/mfa", handleLoginMFA(d.Logger, mfa, d.TrustedProxies, bd)}, // mfa.go
		{"GET /v1/mfa", bearer(d.Logger, d.Auth, bd.dp, handleMFAStatus(d.Logger, mfa))},
		{"POST /v1/mfa/totp", bearer(d.Logger, d.Auth, bd.dp, handleBeginTOTP(d.Logger, mfa, d.TrustedProxies))},
		{"POST /v1/mfa/totp/confirm", bearer(d.Logger, d.Auth, bd.dp, handleConfirmTOTP(d.Logger, mfa, d.TrustedProxies))},
		{"DELETE /v1/mfa/totp", bearer(d.Logger, d.Auth, bd.dp, handleDisableTOTP(d.Logger, mfa, d.TrustedProxies))},
		{"POST /v1/mfa/recovery-codes", bearer(d.Logger, d.Auth, bd.dp, handleRecoveryCodes(d.Logger, mfa, d.TrustedProxies))},
		{"POST /v1/passkeys/register/begin", bearer(d.Logger, d.Auth, bd.dp, handleBeginPasskeyRegistration(d.Logger, pk))}, // passkey.go
		{"POST /v1/passkeys/register/finish", bearer(d.Logger, d.Auth, bd.dp, handleFinishPasskeyRegistration(d.Logger, pk, d.TrustedProxies))},
		{"GET /v1/passkeys", bearer(d.Logger, d.Auth, bd.dp, handleListPasskeys(d.Logger, pk))},
		{"PATCH /v1/passkeys/{id}", bearer(d.Logger, d.Auth, bd.dp, handleRenamePasskey(d.Logger, pk))},
		{"DELETE /v1/passkeys/{id}", bearer(d.Logger, d.Auth, bd.dp, handleDeletePasskey(d.Logger, pk, d.TrustedProxies))},
		{"POST /v1/login/passkey/begin", handleBeginPasskeyLogin(d.Logger, pk, d.TrustedProxies)},
		{"POST /v1/login/passkey/finish", handleFinishPasskeyLogin(d.Logger, pk, d.TrustedProxies, bd)},
		{"POST /v1/passkeys/reauthenticate/begin", bearer(d.Logger, d.Auth, bd.dp, handleBeginPasskeyReauth(d.Logger, pk))},
		{"GET /.well-known/jwks.json", handleJWKS(d.JWKS)},
		{"GET /healthz", handleHealthz()},
		{"GET /readyz", handleReadyz(d.Logger, d.Ready)},
		{"GET /openapi.yaml", handleOpenAPI()},
	}
	admin := func(h http.Handler) http.Handler { return adminOnly(d.Logger, d.AdminAuth, d.TrustedProxies, h) }
	a := d.Admin
	if a == nil {
		a = noAdmin{}
	}
	routes = append(routes, // admin.go
		route{"GET /admin/v1/users", admin(handleAdminUsers(d.Logger, a))},
		route{"POST /admin/v1/users", admin(handleAdminCreateUser(d.Logger, a))},
		route{"GET /admin/v1/users/{id}", admin(handleAdminUser(d.Logger, a))},
		route{"PATCH /admin/v1/users/{id}", admin(handleAdminUpdateUser(d.Logger, a))},
		route{"DELETE /admin/v1/users/{id}", admin(handleAdminNoContent(d.Logger, "user", a.DeleteUser))},
		route{"GET /admin/v1/users/{id}/sessions", admin(handleAdminUserSessions(d.Logger, a))},
		route{"DELETE /admin/v1/users/{id}/sessions", admin(handleAdminNoContent(d.Logger, "user", a.EndUserSessions))},
		route{"POST /admin/v1/users/{id}/sessions", admin(handleAdminCreateSession(d.Logger, a, bd.dp))},
		route{"DELETE /admin/v1/sessions/{id}", admin(handleAdminNoContent(d.Logger, "session", a.EndSession))},
		route{"GET /admin/v1/events", admin(handleAdminEvents(d.Logger, a))},
		route{"POST /admin/v1/webhooks", admin(handleAdminCreateWebhook(d.Logger, a))},
		route{"GET /admin/v1/webhooks", admin(handleAdminWebhooks(d.Logger, a))},
		route{"DELETE /admin/v1/webhooks/{id}", admin(handleAdminNoContent(d.Logger, "webhook", a.DeleteWebhook))},
		route{"GET /admin/v1/webhooks/{id}/deliveries", admin(handleAdminDeliveries(d.Logger, a))},
		route{"POST /admin/v1/webhooks/{id}/redeliver", admin(handleAdminRedeliver(d.Logger, a))},
	)
	if d.Account != nil { // the account page, web/
		routes = append(routes, route{"GET /account/", d.Account},
			route{"GET /account", http.RedirectHandler("/account/", http.StatusMovedPermanently)},
			// "/" has no API of its own: someone who opens the server's
			// address in a browser lands on the account page, not on a
			// JSON 404.
			route{"GET /{$}", http.RedirectHandler("/account/", http.StatusFound)})
	}
	return routes
}

// addRoutes registers routeTable on mux, with a fallback that answers
// unknown paths 404 and known paths with another method 405.
func addRoutes(mux *http.ServeMux, d Deps) {
	routes := routeTable(d)

	// Paths without their methods, to tell 405 from 404 in the fallback.
	allowed := map[string][]string{}
	for _, r := range routes {
		mux.Handle(r.pattern, r.handler)
		method, path, _ := strings.Cut(r.pattern, " ")
		allowed[path] = append(allowed[path], method)
	}
	paths := http.NewServeMux()
	for path, methods := range allowed {
		paths.Handle(path, methodNotAllowed(d.Logger, methods))
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := paths.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		writeError(w, r, d.Logger, sessiond.Errorf(sessiond.CodeNotFound, "no such endpoint: %s", r.URL.Path))
	}))
}

func methodNotAllowed(logger *slog.Logger, methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	if strings.Contains(allow, "GET") {
		allow += ", HEAD"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, r, logger, sessiond.Errorf(codeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow))
	})
}
