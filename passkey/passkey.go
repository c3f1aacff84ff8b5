// Package passkey is sessiond's WebAuthn relying party: the ceremonies'
// options and checks (challenge, origin, RP ID hash, signature, flags,
// signature counter), by go-webauthn, behind sessiond.RelyingParty. It
// keeps nothing itself: the state of a ceremony in progress and the
// credential records go back to the caller (package auth), which stores
// them. Start at New.
//
// Choices, the same for every ceremony:
//   - resident key required: every passkey is discoverable, so sign-in
//     needs no email (usernameless);
//   - user verification required for registration and usernameless
//     login: a passkey login is a complete login, both factors in one
//     (the device, and the PIN or biometric that unlocked it), so an
//     authenticator that did not verify its user is refused rather than
//     taken as one factor; only preferred where the passkey is one proof
//     beside another (a password login's second step, a reauthentication
//     of a live session), for a user whose credentials the options list;
//   - attestation "none": sessiond does not restrict authenticator models,
//     and asking for attestation would only cost users a privacy prompt;
//   - algorithms pinned to ES256, EdDSA and RS256.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sessiond/sessiond"
)

// Options configure a relying party.
type Options struct {
	// PublicURL is where sessiond is reached; its host is the RP ID and
	// its origin the first allowed origin.
	PublicURL string
	// Origins are further origins whose pages may run ceremonies.
	Origins []string
	// Name is the relying party's name, which authenticators show.
	Name string
}

// RelyingParty implements sessiond.RelyingParty.
type RelyingParty struct {
	w *webauthn.WebAuthn
}

var _ sessiond.RelyingParty = (*RelyingParty)(nil)

// ErrNoDomain is New's error for a public URL whose host is an IP address:
// WebAuthn needs a domain name as the RP ID.
var ErrNoDomain = errors.New("passkeys need a public URL whose host is a domain name (an IP address cannot be a WebAuthn RP ID)")

// RPID is the relying party id of a public URL: its host name.
func RPID(publicURL string) (string, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("public URL %q has no host", publicURL)
	}
	host := u.Hostname()
	if protocol.ValidateRPID(host) != nil {
		return "", ErrNoDomain
	}
	return host, nil
}

// New returns the relying party of o. ErrNoDomain when the public URL's
// host is an address.
func New(o Options) (*RelyingParty, error) {
	rpID, err := RPID(o.PublicURL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.PublicURL)
	origins := append([]string{u.Scheme + "://" + u.Host}, o.Origins...)
	name := o.Name
	if name == "" {
		name = "sessiond"
	}
	timeout := webauthn.TimeoutConfig{Timeout: sessiond.PasskeyChallengeTTL, TimeoutUVD: sessiond.PasskeyChallengeTTL}
	w, err := webauthn.New(&webauthn.Config{
		RPID:                  rpID,
		RPDisplayName:         name,
		RPOrigins:             origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		},
		// The challenge's expiry is the database row's; the library's
		// would read the wall clock, not the service's.
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party: %w", err)
	}
	return &RelyingParty{w: w}, nil
}

// user is a webauthn.User with at most the one credential a ceremony is
// about: the library compares ids and finds the public key in it.
type user struct {
	u     sessiond.PasskeyUser
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return []byte(u.u.ID) }
func (u *user) WebAuthnName() string                       { return u.u.Name }
func (u *user) WebAuthnDisplayName() string                { return u.u.Name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

var algorithms = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// BeginRegistration implements sessiond.RelyingParty.
func (rp *RelyingParty) BeginRegistration(u sessiond.PasskeyUser, exclude [][]byte) (options, state []byte, err error) {
	excl := make([]protocol.CredentialDescriptor, len(exclude))
	for i, id := range exclude {
		excl[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: id}
	}
	creation, session, err := rp.w.BeginRegistration(&user{u: u},
		webauthn.WithCredentialParameters(algorithms),
		webauthn.WithExclusions(excl),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
	)
	if err != nil {
		return nil, nil, sessiond.Internal("begin passkey registration", err)
	}
	return encodeCeremony(creation.Response, session)
}

// BeginLogin implements sessiond.RelyingParty. For a known user the
// options list the user's credentials and user verification is only
// preferred: there the passkey is one proof beside another (a password, a
// live session), as a security key without a PIN may be.
func (rp *RelyingParty) BeginLogin(u *sessiond.PasskeyUser, allow [][]byte) (options, state []byte, err error) {
	var assertion *protocol.CredentialAssertion
	var session *webauthn.SessionData
	if u == nil {
		assertion, session, err = rp.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		owner := &user{u: *u, creds: make([]webauthn.Credential, len(allow))}
		for i, id := range allow {
			owner.creds[i] = webauthn.Credential{ID: id}
		}
		assertion, session, err = rp.w.BeginLogin(owner, webauthn.WithUserVerification(protocol.VerificationPreferred))
	}
	if err != nil {
		return nil, nil, sessiond.Internal("begin passkey login", err)
	}
	return encodeCeremony(assertion.Response, session)
}

func encodeCeremony(options any, session *webauthn.SessionData) ([]byte, []byte, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return nil, nil, sessiond.Internal("encode passkey options", err)
	}
	s, err := json.Marshal(session)
	if err != nil {
		return nil, nil, sessiond.Internal("encode passkey state", err)
	}
	return o, s, nil
}

func decodeState(state []byte) (webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(state, &s); err != nil {
		return s, sessiond.Internal("decode passkey state", err)
	}
	return s, nil
}

// refused turns the library's verdict into a client error that says which
// check failed.
func refused(what string, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		detail := pe.Details
		if pe.DevInfo != "" {
			detail += ": " + pe.DevInfo
		}
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "%s: %s", what, detail)
	}
	return sessiond.Errorf(sessiond.CodeInvalidRequest, "%s: %v", what, err)
}

// FinishRegistration implements sessiond.RelyingParty.
func (rp *RelyingParty) FinishRegistration(u sessiond.PasskeyUser, state, credential []byte) (*sessiond.PasskeyVerified, error) {
	session, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return nil, refused("the credential is malformed", err)
	}
	cred, err := rp.w.CreateCredential(&user{u: u}, session, parsed)
	if err != nil {
		return nil, refused("the credential was not accepted", err)
	}
	if !cred.Flags.UserVerified {
		// Required in the options; the library checks it too, this is
		// what a passkey login relies on.
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "the authenticator did not verify its user")
	}
	return verified(cred)
}

func verified(cred *webauthn.Credential) (*sessiond.PasskeyVerified, error) {
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, sessiond.Internal("encode passkey record", err)
	}
	return &sessiond.PasskeyVerified{
		CredentialID:   cred.ID,
		Record:         record,
		SignCount:      cred.Authenticator.SignCount,
		UserVerified:   cred.Flags.UserVerified,
		BackupEligible: cred.Flags.BackupEligible,
		BackupState:    cred.Flags.BackupState,
		CloneWarning:   cred.Authenticator.CloneWarning,
	}, nil
}

// ParseAssertion implements sessiond.RelyingParty.
func (rp *RelyingParty) ParseAssertion(credential []byte) (*sessiond.PasskeyAssertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return nil, refused("the credential is malformed", err)
	}
	return &sessiond.PasskeyAssertion{CredentialID: parsed.RawID, UserHandle: parsed.Response.UserHandle, Parsed: parsed}, nil
}

// FinishLogin implements sessiond.RelyingParty. A counter that did not
// advance is no error here: the result says CloneWarning, and the caller
// decides (it refuses, and flags the passkey).
func (rp *RelyingParty) FinishLogin(state []byte, a *sessiond.PasskeyAssertion, p *sessiond.Passkey) (*sessiond.PasskeyVerified, error) {
	session, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	parsed, ok := a.Parsed.(*protocol.ParsedCredentialAssertionData)
	if !ok {
		return nil, sessiond.Internal("finish passkey login", errors.New("assertion not parsed by this relying party"))
	}
	var cred webauthn.Credential
	if err := json.Unmarshal(p.Record, &cred); err != nil {
		return nil, sessiond.Internal("decode passkey record", err)
	}
	// The stored counter is the row's, which the caller holds locked.
	cred.Authenticator.SignCount = p.SignCount
	cred.Authenticator.CloneWarning = false
	owner := &user{u: sessiond.PasskeyUser{ID: p.UserID}, creds: []webauthn.Credential{cred}}
	var got *webauthn.Credential
	if len(session.UserID) > 0 {
		// Begun for a known user: the library checks that the session is
		// this user's and the credential one it allowed, and wants the
		// user to own every allowed id; the others need no key here, the
		// one answered with is found first.
		for _, id := range session.AllowedCredentialIDs {
			owner.creds = append(owner.creds, webauthn.Credential{ID: id})
		}
		got, err = rp.w.ValidateLogin(owner, session, parsed)
	} else {
		_, got, err = rp.w.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return owner, nil
		}, session, parsed)
	}
	if err != nil {
		return nil, refused("the passkey was not accepted", err)
	}
	v, err := verified(got)
	if err != nil {
		return nil, err
	}
	// The record's flag is the one registration latched; what this
	// assertion proved is its own authenticator data's.
	v.UserVerified = parsed.Response.AuthenticatorData.Flags.UserVerified()
	return v, nil
}
