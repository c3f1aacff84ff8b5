package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/sessiond/sessiond"
)

// secondFactorBody is a TOTP code or a recovery code. Where it is
// optional (DELETE /v1/mfa/totp, POST /v1/mfa/recovery-codes: a session
// that gave a second factor needs none) the body may be absent.
type secondFactorBody struct {
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

func (b secondFactorBody) valid() error {
	if b.Code != "" && b.RecoveryCode != "" {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "send code or recovery_code, not both")
	}
	return nil
}

func (b secondFactorBody) factor() sessiond.SecondFactor {
	return sessiond.SecondFactor{Code: b.Code, RecoveryCode: b.RecoveryCode}
}

// requiredFactor is secondFactorBody where one of the two is required.
type requiredFactor struct{ secondFactorBody }

func (b requiredFactor) valid() error {
	if b.Code == "" && b.RecoveryCode == "" {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"code\" or \"recovery_code\" is required")
	}
	return b.secondFactorBody.valid()
}

type codeRequest struct {
	Code string `json:"code"`
}

func (r codeRequest) valid() error { return required([2]string{"code", r.Code}) }

// loginMFARequest finishes a login with a code, a recovery code, or a
// passkey's assertion for a challenge begun with the mfa_token.
type loginMFARequest struct {
	MFAToken string `json:"mfa_token"`
	secondFactorBody
	ChallengeID string          `json:"challenge_id,omitempty"`
	Credential  json.RawMessage `json:"credential,omitempty"`
	DeviceToken string          `json:"device_token,omitempty"`
}

func (r loginMFARequest) valid() error {
	if err := required([2]string{"mfa_token", r.MFAToken}); err != nil {
		return err
	}
	if r.ChallengeID == "" && len(r.Credential) == 0 {
		return requiredFactor{r.secondFactorBody}.valid()
	}
	if r.Code != "" || r.RecoveryCode != "" {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "send code, recovery_code, or a passkey's challenge_id and credential, not several")
	}
	return finishRequest{ChallengeID: r.ChallengeID, Credential: r.Credential}.valid()
}

func (r loginMFARequest) factor() sessiond.SecondFactor {
	f := r.secondFactorBody.factor()
	f.ChallengeID, f.Credential = r.ChallengeID, r.Credential
	return f
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// decodeOptional is decode for a body that may be left out: no body at
// all is T's zero value.
func decodeOptional[T validator](w http.ResponseWriter, r *http.Request) (T, error) {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		var v T
		return v, v.valid()
	}
	return decode[T](w, r)
}

func handleMFAStatus(logger *slog.Logger, svc sessiond.MFAService) http.Handler {
	type response struct {
		TOTP              bool `json:"totp"`
		RecoveryCodesLeft int  `json:"recovery_codes_left"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := svc.MFAStatus(r.Context(), principalFrom(r.Context()))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, response{TOTP: st.TOTP, RecoveryCodesLeft: st.RecoveryCodesLeft})
	})
}

// handleBeginTOTP takes no body. The QR code comes as a data: URL, so the
// page shows it without a request to anywhere else.
func handleBeginTOTP(logger *slog.Logger, svc sessiond.MFAService, trusted []netip.Prefix) http.Handler {
	type response struct {
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauth_url"`
		QRCode     string `json:"qr_code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := svc.BeginTOTP(r.Context(), principalFrom(r.Context()), clientInfo(r, trusted))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, response{Secret: e.Secret, OTPAuthURL: e.URL,
			QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode)})
	})
}

func handleConfirmTOTP(logger *slog.Logger, svc sessiond.MFAService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[codeRequest](w, r)
		var codes []string
		if err == nil {
			codes, err = svc.ConfirmTOTP(r.Context(), principalFrom(r.Context()), req.Code, clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, recoveryCodesResponse{codes})
	})
}

func handleDisableTOTP(logger *slog.Logger, svc sessiond.MFAService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeOptional[secondFactorBody](w, r)
		if err == nil {
			err = svc.DisableTOTP(r.Context(), principalFrom(r.Context()), req.factor(), clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleRecoveryCodes(logger *slog.Logger, svc sessiond.MFAService, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeOptional[secondFactorBody](w, r)
		var codes []string
		if err == nil {
			codes, err = svc.RegenerateRecoveryCodes(r.Context(), principalFrom(r.Context()), req.factor(), clientInfo(r, trusted))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, recoveryCodesResponse{codes})
	})
}

// handleLoginMFA finishes a login like handleLogin does, cookie mode
// included: the checks before anything is spent, the cookies after.
func handleLoginMFA(logger *slog.Logger, svc sessiond.MFAService, trusted []netip.Prefix, bd browserDeps) http.Handler {
	return loginHandler(logger, trusted, bd, func(ctx context.Context, req loginMFARequest, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
		return svc.LoginMFA(ctx, req.MFAToken, req.factor(), c)
	})
}

func (r loginMFARequest) deviceToken() string { return r.DeviceToken }

// noMFA stands in for a missing MFAService: second factors are off.
type noMFA struct{}

var errNoMFA = sessiond.Errorf(sessiond.CodeNotFound, "second factors are not served here")

func (noMFA) MFAStatus(context.Context, *sessiond.Principal) (*sessiond.MFAStatus, error) {
	return nil, errNoMFA
}
func (noMFA) BeginTOTP(context.Context, *sessiond.Principal, sessiond.ClientInfo) (*sessiond.TOTPEnrollment, error) {
	return nil, errNoMFA
}
func (noMFA) ConfirmTOTP(context.Context, *sessiond.Principal, string, sessiond.ClientInfo) ([]string, error) {
	return nil, errNoMFA
}
func (noMFA) DisableTOTP(context.Context, *sessiond.Principal, sessiond.SecondFactor, sessiond.ClientInfo) error {
	return errNoMFA
}
func (noMFA) RegenerateRecoveryCodes(context.Context, *sessiond.Principal, sessiond.SecondFactor, sessiond.ClientInfo) ([]string, error) {
	return nil, errNoMFA
}
func (noMFA) LoginMFA(context.Context, string, sessiond.SecondFactor, sessiond.ClientInfo) (*sessiond.Tokens, error) {
	return nil, errNoMFA
}
func (noMFA) StepUp(context.Context, *sessiond.Principal, sessiond.SecondFactor, sessiond.ClientInfo) error {
	return errNoMFA
}
