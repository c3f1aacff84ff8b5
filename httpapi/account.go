package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/sessiond/sessiond"
)

// accepted is the body of every 202 of the account flows: one answer,
// whatever happened, so that it reveals nothing.
var accepted = struct {
	Status string `json:"status"`
}{"accepted"}

type emailRequest struct {
	Email string `json:"email"`
}

func (r emailRequest) valid() error { return required([2]string{"email", r.Email}) }

type tokenRequest struct {
	Token string `json:"token"`
}

func (r tokenRequest) valid() error { return required([2]string{"token", r.Token}) }

type resetRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

func (r resetRequest) valid() error {
	return required([2]string{"token", r.Token}, [2]string{"new_password", r.NewPassword})
}

func handleForgotPassword(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[emailRequest](w, r)
		if err == nil {
			err = svc.ForgotPassword(r.Context(), req.Email, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusAccepted, accepted)
	})
}

func handleResetPassword(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[resetRequest](w, r)
		if err == nil {
			err = svc.ResetPassword(r.Context(), req.Token, req.NewPassword, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleVerifyEmail(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[tokenRequest](w, r)
		if err == nil {
			err = svc.VerifyEmail(r.Context(), req.Token, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleResendVerification takes no body.
func handleResendVerification(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.ResendVerification(r.Context(), principalFrom(r.Context()), clientInfo(r, trusted)); err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusAccepted, accepted)
	})
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (r changePasswordRequest) valid() error {
	return required([2]string{"current_password", r.CurrentPassword}, [2]string{"new_password", r.NewPassword})
}

func handleChangePassword(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[changePasswordRequest](w, r)
		if err == nil {
			err = svc.ChangePassword(r.Context(), principalFrom(r.Context()), req.CurrentPassword, req.NewPassword, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type changeEmailRequest struct {
	Password string `json:"password"`
	NewEmail string `json:"new_email"`
}

func (r changeEmailRequest) valid() error {
	return required([2]string{"password", r.Password}, [2]string{"new_email", r.NewEmail})
}

func handleChangeEmail(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[changeEmailRequest](w, r)
		if err == nil {
			err = svc.ChangeEmail(r.Context(), principalFrom(r.Context()), req.Password, req.NewEmail, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusAccepted, accepted)
	})
}

type passwordRequest struct {
	Password string `json:"password"`
}

func (r passwordRequest) valid() error { return required([2]string{"password", r.Password}) }

func handleDeleteAccount(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[passwordRequest](w, r)
		if err == nil {
			err = svc.DeleteAccount(r.Context(), principalFrom(r.Context()), req.Password, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// reauthRequest carries one proof: the password, a one-time code of the
// account's second factor, or a passkey's assertion for a challenge of
// POST /v1/passkeys/reauthenticate/begin. The service refuses none or
// several.
type reauthRequest struct {
	Password    string          `json:"password"`
	Code        string          `json:"code"`
	ChallengeID string          `json:"challenge_id,omitempty"`
	Credential  json.RawMessage `json:"credential,omitempty"`
}

func (r reauthRequest) valid() error {
	if r.ChallengeID == "" && len(r.Credential) == 0 {
		return nil
	}
	return finishRequest{ChallengeID: r.ChallengeID, Credential: r.Credential}.valid()
}

func handleReauthenticate(logger *slog.Logger, svc sessiond.AccountService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[reauthRequest](w, r)
		if err == nil {
			err = svc.Reauthenticate(r.Context(), principalFrom(r.Context()), sessiond.Reauth{Password: req.Password, Code: req.Code, ChallengeID: req.ChallengeID, Credential: req.Credential}, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// noAccounts stands in for a missing AccountService: the flows are off.
type noAccounts struct{}

var errNoAccounts = sessiond.Errorf(sessiond.CodeNotFound, "account flows are not served here")

func (noAccounts) ForgotPassword(context.Context, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) ResetPassword(context.Context, string, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) VerifyEmail(context.Context, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) ResendVerification(context.Context, *sessiond.Principal, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) ChangePassword(context.Context, *sessiond.Principal, string, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) ChangeEmail(context.Context, *sessiond.Principal, string, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) DeleteAccount(context.Context, *sessiond.Principal, string, sessiond.ClientInfo) error {
	return errNoAccounts
}
func (noAccounts) Reauthenticate(context.Context, *sessiond.Principal, sessiond.Reauth, sessiond.ClientInfo) error {
	return errNoAccounts
}
