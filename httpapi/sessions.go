package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
)

func handleListSessions(logger *slog.Logger, svc sessiond.AuthService) http.Handler {
	type session struct {
		SessionID  string    `json:"session_id"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
		UserAgent  string    `json:"user_agent"`
		IP         string    `json:"ip"`
		Current    bool      `json:"current"`
		// DeviceBound: the session is bound to a DPoP key.
		DeviceBound bool `json:"device_bound"`
	}
	type response struct {
		Sessions []session `json:"sessions"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		ss, err := svc.Sessions(r.Context(), p)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Sessions: make([]session, len(ss))}
		for i, s := range ss {
			out.Sessions[i] = session{
				SessionID: s.ID, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt, ExpiresAt: s.ExpiresAt,
				UserAgent: s.UserAgent, IP: s.IP, Current: s.ID == p.SessionID, DeviceBound: s.DPoPJKT != "",
			}
		}
		encode(w, http.StatusOK, out)
	})
}

func handleRevokeSession(logger *slog.Logger, svc sessiond.AuthService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.RevokeSession(r.Context(), principalFrom(r.Context()), r.PathValue("id")); err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleLogoutAll(logger *slog.Logger, svc sessiond.AuthService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.LogoutAll(r.Context(), principalFrom(r.Context())); err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
