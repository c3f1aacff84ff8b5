package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/sessiond/sessiond"
)

// ceremonyResponse is a begun passkey ceremony: options go to
// PublicKeyCredential.parseCreationOptionsFromJSON() or
// parseRequestOptionsFromJSON() as they are.
type ceremonyResponse struct {
	ChallengeID string          `json:"challenge_id"`
	Options     json.RawMessage `json:"options"`
}

// finishRequest is a ceremony's answer: credential is what the browser's
// PublicKeyCredential.toJSON() returned, kept raw for the relying party.
type finishRequest struct {
	ChallengeID string          `json:"challenge_id"`
	Credential  json.RawMessage `json:"credential"`
	Name        string          `json:"name,omitempty"`
}

func (r finishRequest) valid() error {
	if err := required([2]string{"challenge_id", r.ChallengeID}); err != nil {
		return err
	}
	if c := bytes.TrimSpace(r.Credential); len(c) == 0 || c[0] != '{' {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"credential\" is required: the object PublicKeyCredential.toJSON() returns")
	}
	return nil
}

type renameRequest struct {
	Name string `json:"name"`
}

func (r renameRequest) valid() error { return required([2]string{"name", r.Name}) }

// passkeyResponse is a passkey as the API shows it; last_used_at is null
// until it has signed someone in.
type passkeyResponse struct {
	PasskeyID  string     `json:"passkey_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func newPasskeyResponse(p *sessiond.Passkey) passkeyResponse {
	r := passkeyResponse{PasskeyID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt}
	if !p.LastUsedAt.IsZero() {
		t := p.LastUsedAt
		r.LastUsedAt = &t
	}
	return r
}

func encodeCeremony(w http.ResponseWriter, c *sessiond.PasskeyCeremony) {
	encode(w, http.StatusOK, ceremonyResponse{ChallengeID: c.ChallengeID, Options: c.Options})
}

// handleBeginPasskeyRegistration takes no body.
func handleBeginPasskeyRegistration(logger *slog.Logger, svc sessiond.PasskeyService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := svc.BeginPasskeyRegistration(r.Context(), principalFrom(r.Context()))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encodeCeremony(w, c)
	})
}

func handleFinishPasskeyRegistration(logger *slog.Logger, svc sessiond.PasskeyService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[finishRequest](w, r)
		var p *sessiond.Passkey
		if err == nil {
			p, err = svc.FinishPasskeyRegistration(r.Context(), principalFrom(r.Context()), req.ChallengeID, req.Credential, req.Name, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusCreated, newPasskeyResponse(p))
	})
}

func handleListPasskeys(logger *slog.Logger, svc sessiond.PasskeyService) http.Handler {
	type response struct {
		Passkeys []passkeyResponse `json:"passkeys"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps, err := svc.Passkeys(r.Context(), principalFrom(r.Context()))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := response{Passkeys: make([]passkeyResponse, len(ps))}
		for i := range ps {
			out.Passkeys[i] = newPasskeyResponse(&ps[i])
		}
		encode(w, http.StatusOK, out)
	})
}

func handleRenamePasskey(logger *slog.Logger, svc sessiond.PasskeyService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[renameRequest](w, r)
		var p *sessiond.Passkey
		if err == nil {
			p, err = svc.RenamePasskey(r.Context(), principalFrom(r.Context()), r.PathValue("id"), req.Name)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, newPasskeyResponse(p))
	})
}

func handleDeletePasskey(logger *slog.Logger, svc sessiond.PasskeyService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.DeletePasskey(r.Context(), principalFrom(r.Context()), r.PathValue("id"), clientInfo(r, trusted)); err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// beginLoginRequest is the optional body of a passkey login's begin: an
// mfa_token makes it the second step of that password login.
type beginLoginRequest struct {
	MFAToken string `json:"mfa_token,omitempty"`
}

func (beginLoginRequest) valid() error { return nil }

// handleBeginPasskeyLogin takes no body for a usernameless login, or
// {mfa_token}.
func handleBeginPasskeyLogin(logger *slog.Logger, svc sessiond.PasskeyService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeOptional[beginLoginRequest](w, r)
		var c *sessiond.PasskeyCeremony
		if err == nil {
			c, err = svc.BeginPasskeyLogin(r.Context(), req.MFAToken, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encodeCeremony(w, c)
	})
}

// handleBeginPasskeyReauth takes no body; POST /v1/reauthenticate
// finishes it.
func handleBeginPasskeyReauth(logger *slog.Logger, svc sessiond.PasskeyService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := svc.BeginPasskeyReauth(r.Context(), principalFrom(r.Context()))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encodeCeremony(w, c)
	})
}

// handleFinishPasskeyLogin answers like handleLogin, cookie mode included.
func handleFinishPasskeyLogin(logger *slog.Logger, svc sessiond.PasskeyService, trusted []netip.Prefix, bd browserDeps) http.Handler {
	return loginHandler(logger, trusted, bd, func(ctx context.Context, req finishRequest, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
		return svc.FinishPasskeyLogin(ctx, req.ChallengeID, req.Credential, c)
	})
}

// deviceToken: a passkey sign-in carries none in its body; a device
// token cookie, if the browser has one, still goes with it.
func (r finishRequest) deviceToken() string { return "" }

// noPasskeys stands in for a missing PasskeyService: passkeys are off.
type noPasskeys struct{}

var errNoPasskeys = sessiond.Errorf(sessiond.CodeNotFound, "passkeys are not served here")

func (noPasskeys) BeginPasskeyRegistration(context.Context, *sessiond.Principal) (*sessiond.PasskeyCeremony, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) FinishPasskeyRegistration(context.Context, *sessiond.Principal, string, []byte, string, sessiond.ClientInfo) (*sessiond.Passkey, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) Passkeys(context.Context, *sessiond.Principal) ([]sessiond.Passkey, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) RenamePasskey(context.Context, *sessiond.Principal, string, string) (*sessiond.Passkey, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) DeletePasskey(context.Context, *sessiond.Principal, string, sessiond.ClientInfo) error {
	return errNoPasskeys
}
func (noPasskeys) BeginPasskeyLogin(context.Context, string, sessiond.ClientInfo) (*sessiond.PasskeyCeremony, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) BeginPasskeyReauth(context.Context, *sessiond.Principal) (*sessiond.PasskeyCeremony, error) {
	return nil, errNoPasskeys
}
func (noPasskeys) FinishPasskeyLogin(context.Context, string, []byte, sessiond.ClientInfo) (*sessiond.Tokens, error) {
	return nil, errNoPasskeys
}
