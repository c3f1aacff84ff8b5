package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/dpop"
)

// The admin API (routes.go, /admin/v1/…): operators and trusted backends,
// authenticated by admin keys. Every handler calls sessiond.AdminService and
// answers the shapes of docs/API.md, "Admin API".

const actorKey ctxKey = 100

// adminOnly admits requests that carry a valid admin key as a Bearer
// token, puts the actor into the request context, and records the call as
// an admin.request event once it has been answered.
func adminOnly(logger *slog.Logger, auth sessiond.AdminAuthenticator, trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := bearerToken(r.Header.Get("Authorization"))
		var actor sessiond.Actor
		switch {
		case err == nil && auth == nil:
			err = sessiond.Errorf(sessiond.CodeInvalidToken, "the admin API is not configured on this server")
		case err == nil:
			actor, err = auth.AuthenticateAdmin(r.Context(), key)
		}
		if err != nil {
			if sessiond.ErrorCode(err) == sessiond.CodeInvalidToken {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			writeError(w, r, logger, err)
			return
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), actorKey, actor)))
		if rec.code != "" {
			setProblemCode(w, rec.code)
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		c := clientInfo(r, trusted)
		// The answer is out; a client that hangs up now must not cost the record.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := auth.RecordAdminRequest(ctx, sessiond.AdminRequest{Actor: actor, Method: r.Method, Path: r.URL.Path,
			Status: status, IP: c.IP, UserAgent: c.UserAgent}); err != nil {
			logger.ErrorContext(ctx, "recording an admin request", "request_id", requestIDFrom(r.Context()),
				"actor", actor.KeyName, "path", r.URL.Path, "error", err)
		}
	})
}

func actorFrom(ctx context.Context) sessiond.Actor {
	a, _ := ctx.Value(actorKey).(sessiond.Actor)
	return a
}

// isUUID reports whether s is a UUID in the canonical lower-case form ids
// have. A path or query id that is not one names nothing, and is refused
// before it reaches the database.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// pathID is the {id} of the path, or a not-found error naming what.
func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if !isUUID(id) {
		return "", sessiond.Errorf(sessiond.CodeNotFound, "%s not found", what)
	}
	return id, nil
}

// queryLimit reads ?limit=; absent is 0, the default.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, sessiond.Errorf(sessiond.CodeInvalidRequest, "limit must be a positive whole number")
	}
	return n, nil
}

// cursorJSON is next_cursor: null on the last page.
func cursorJSON(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

// adminUser is a user as the admin API shows it.
type adminUser struct {
	UserID        string    `json:"user_id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
}

func newAdminUser(u *sessiond.User) adminUser {
	return adminUser{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

func handleAdminUsers(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	type response struct {
		Users      []adminUser `json:"users"`
		NextCursor *string     `json:"next_cursor"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		q := r.URL.Query()
		users, next, err := svc.Users(r.Context(), sessiond.UserQuery{Email: q.Get("email"), Limit: limit, Cursor: q.Get("cursor")})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Users: make([]adminUser, len(users)), NextCursor: cursorJSON(next)}
		for i := range users {
			out.Users[i] = newAdminUser(&users[i])
		}
		encode(w, http.StatusOK, out)
	})
}

type adminCreateUserRequest struct {
	Email         string `json:"email"`
	Password      string `json:"password"`
	PasswordHash  string `json:"password_hash"`
	EmailVerified bool   `json:"email_verified"`
}

func (c adminCreateUserRequest) valid() error {
	if err := required([2]string{"email", c.Email}); err != nil {
		return err
	}
	if (c.Password == "") == (c.PasswordHash == "") {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "give exactly one of \"password\" and \"password_hash\"")
	}
	return nil
}

func handleAdminCreateUser(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[adminCreateUserRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := svc.CreateUser(r.Context(), actorFrom(r.Context()), sessiond.NewUser{
			Email: req.Email, Password: req.Password, PasswordHash: req.PasswordHash, EmailVerified: req.EmailVerified})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusCreated, newAdminUser(u))
	})
}

func handleAdminUser(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "user")
		var u *sessiond.User
		if err == nil {
			u, err = svc.User(r.Context(), id)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, newAdminUser(u))
	})
}

type adminPatchUserRequest struct {
	Disabled      *bool `json:"disabled"`
	EmailVerified *bool `json:"email_verified"`
}

func (p adminPatchUserRequest) valid() error {
	if p.Disabled == nil && p.EmailVerified == nil {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "give \"disabled\" or \"email_verified\", or both")
	}
	return nil
}

func handleAdminUpdateUser(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "user")
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[adminPatchUserRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := svc.UpdateUser(r.Context(), actorFrom(r.Context()), id, sessiond.UserPatch{Disabled: req.Disabled, EmailVerified: req.EmailVerified})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, newAdminUser(u))
	})
}

// handleAdminNoContent is the shape of every admin call that answers 204:
// the path's id, one use case, no body.
func handleAdminNoContent(logger *slog.Logger, what string, do func(ctx context.Context, a sessiond.Actor, id string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, what)
		if err == nil {
			err = do(r.Context(), actorFrom(r.Context()), id)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleAdminUserSessions(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	type session struct {
		SessionID  string    `json:"session_id"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
		UserAgent  string    `json:"user_agent"`
		IP         string    `json:"ip"`
		// DeviceBound: the session is bound to a DPoP key.
		DeviceBound bool `json:"device_bound"`
	}
	type response struct {
		Sessions []session `json:"sessions"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "user")
		var ss []sessiond.Session
		if err == nil {
			ss, err = svc.UserSessions(r.Context(), id)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Sessions: make([]session, len(ss))}
		for i, s := range ss {
			out.Sessions[i] = session{SessionID: s.ID, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt,
				ExpiresAt: s.ExpiresAt, UserAgent: s.UserAgent, IP: s.IP, DeviceBound: s.DPoPJKT != ""}
		}
		encode(w, http.StatusOK, out)
	})
}

// adminCreateSessionRequest describes the end user's client, which only
// the calling backend saw; every field is optional. A backend whose client
// sent it a DPoP proof relays the proof, the URL the client made it for
// (at the backend) and its method, so that the session is bound to the
// client's key.
type adminCreateSessionRequest struct {
	UserAgent string `json:"user_agent"`
	IP        string `json:"ip"`
	DPoPProof string `json:"dpop_proof"`
	DPoPHTU   string `json:"dpop_htu"`
	DPoPHTM   string `json:"dpop_htm"`
}

// maxHTM bounds dpop_htm: HTTP method names are short.
const maxHTM = 16

func (c adminCreateSessionRequest) valid() error {
	if c.IP != "" {
		if _, err := netip.ParseAddr(c.IP); err != nil {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"ip\" must be an IP address")
		}
	}
	if c.DPoPProof == "" {
		if c.DPoPHTU != "" || c.DPoPHTM != "" {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "fields \"dpop_htu\" and \"dpop_htm\" go with \"dpop_proof\"")
		}
		return nil
	}
	if u, err := url.Parse(c.DPoPHTU); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"dpop_htu\" must be the absolute http(s) URL the client made \"dpop_proof\" for")
	}
	if len(c.DPoPHTM) > maxHTM || strings.IndexFunc(c.DPoPHTM, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"dpop_htm\" must be an HTTP method such as \"POST\"")
	}
	return nil
}

// dpop is the relayed proof, and what it must match.
func (c adminCreateSessionRequest) dpop() sessiond.DPoPProof {
	if c.DPoPProof == "" {
		return sessiond.DPoPProof{}
	}
	htm := c.DPoPHTM
	if htm == "" {
		htm = http.MethodPost
	}
	return sessiond.DPoPProof{Proof: c.DPoPProof, Method: htm, URL: c.DPoPHTU}
}

func handleAdminCreateSession(logger *slog.Logger, svc sessiond.AdminService, dp dpopDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "user")
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		var req adminCreateSessionRequest
		if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
			if req, err = decode[adminCreateSessionRequest](w, r); err != nil {
				writeError(w, r, logger, err)
				return
			}
		}
		ip := req.IP
		if a, err := netip.ParseAddr(ip); err == nil {
			ip = a.Unmap().String()
		}
		if req.DPoPProof != "" && dp.nonce != nil {
			// The proof came in the body, not a header: the nonce for
			// the client's next one, which the backend relays, is set
			// here.
			if n := dp.nonce(); n != "" {
				w.Header().Set(dpop.NonceHeader, n)
			}
		}
		t, err := svc.CreateSession(r.Context(), actorFrom(r.Context()), id, sessiond.ClientInfo{UserAgent: req.UserAgent, IP: ip, DPoP: req.dpop()})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		resp := newTokenResponse(t)
		resp.DeviceToken = "" // for a browser's next password login; a backend has none
		encode(w, http.StatusOK, resp)
	})
}

func handleAdminEvents(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	type response struct {
		Events     []sessiond.Event `json:"events"`
		NextCursor *string          `json:"next_cursor"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		q := r.URL.Query()
		eq := sessiond.EventQuery{UserID: q.Get("user_id"), Type: q.Get("type"), After: q.Get("after"), Limit: limit}
		for _, f := range [][2]string{{"user_id", eq.UserID}, {"after", eq.After}} {
			if f[1] != "" && !isUUID(f[1]) {
				writeError(w, r, logger, sessiond.Errorf(sessiond.CodeInvalidRequest, "%s must be an id", f[0]))
				return
			}
		}
		events, next, err := svc.Events(r.Context(), eq)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if events == nil {
			events = []sessiond.Event{}
		}
		encode(w, http.StatusOK, response{Events: events, NextCursor: cursorJSON(next)})
	})
}

// adminWebhook is an endpoint as the admin API shows it; Secret only in
// the answer that created it.
type adminWebhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func newAdminWebhook(e *sessiond.WebhookEndpoint) adminWebhook {
	return adminWebhook{ID: e.ID, URL: e.URL, Events: e.Events, Secret: e.Secret, CreatedAt: e.CreatedAt}
}

type adminCreateWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func (c adminCreateWebhookRequest) valid() error {
	if err := required([2]string{"url", c.URL}); err != nil {
		return err
	}
	if len(c.Events) == 0 {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"events\" must list event types, or be [\"*\"] for all")
	}
	return nil
}

func handleAdminCreateWebhook(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[adminCreateWebhookRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		e, err := svc.CreateWebhook(r.Context(), actorFrom(r.Context()), req.URL, req.Events)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusCreated, newAdminWebhook(e))
	})
}

func handleAdminWebhooks(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	type response struct {
		Webhooks []adminWebhook `json:"webhooks"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := svc.Webhooks(r.Context())
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Webhooks: make([]adminWebhook, len(ws))}
		for i := range ws {
			ws[i].Secret = "" // never shown again
			out.Webhooks[i] = newAdminWebhook(&ws[i])
		}
		encode(w, http.StatusOK, out)
	})
}

func handleAdminDeliveries(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	type delivery struct {
		EventID       string     `json:"event_id"`
		Status        string     `json:"status"`
		Attempts      int        `json:"attempts"`
		LastAttemptAt *time.Time `json:"last_attempt_at"`
		LastStatus    string     `json:"last_status"`
	}
	type response struct {
		Deliveries []delivery `json:"deliveries"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "webhook")
		var ds []sessiond.Delivery
		if err == nil {
			ds, err = svc.WebhookDeliveries(r.Context(), id)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Deliveries: make([]delivery, len(ds))}
		for i, d := range ds {
			out.Deliveries[i] = delivery{EventID: d.EventID, Status: d.Status, Attempts: d.Attempts, LastStatus: d.LastStatus}
			if !d.LastAttemptAt.IsZero() {
				out.Deliveries[i].LastAttemptAt = &ds[i].LastAttemptAt
			}
		}
		encode(w, http.StatusOK, out)
	})
}

type adminRedeliverRequest struct {
	EventID string `json:"event_id"`
}

func (c adminRedeliverRequest) valid() error {
	if err := required([2]string{"event_id", c.EventID}); err != nil {
		return err
	}
	if !isUUID(c.EventID) {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"event_id\" must be an event id")
	}
	return nil
}

func handleAdminRedeliver(logger *slog.Logger, svc sessiond.AdminService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "webhook")
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[adminRedeliverRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if err := svc.Redeliver(r.Context(), actorFrom(r.Context()), id, req.EventID); err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// noAdmin stands in for a missing AdminService; adminOnly refuses every
// call before one of its methods could run, so none is ever called.
type noAdmin struct{ sessiond.AdminService }
