package sessiond

import (
	"context"
	"time"
)

// Passkeys (WebAuthn discoverable credentials).
//
// A ceremony has two requests: begin hands the browser options with a fresh
// challenge and stores what the relying party must remember (a
// PasskeyChallenge, in the database, so that any instance can finish it);
// finish consumes that challenge, once, and checks the browser's answer
// against it. The cryptography is a RelyingParty's (package passkey); the
// rules (who may register, when a login counts, the sign counter) are
// package auth's, run in one store transaction through PasskeyTx.

// Ceremony kinds of a PasskeyChallenge: a challenge begun for one kind
// cannot finish another.
const (
	PasskeyRegister = "register"
	PasskeyLogin    = "login"
	// PasskeySecondFactor is the second step of a password login, for the
	// user of one mfa_token; PasskeyReauth proves the user of one session
	// again.
	PasskeySecondFactor = "mfa"
	PasskeyReauth       = "reauth"
)

// PasskeyChallengeTTL is how long a ceremony may take from begin to finish.
const PasskeyChallengeTTL = 5 * time.Minute

// PasskeyChallenge is the relying party's half of a ceremony in progress.
type PasskeyChallenge struct {
	ID   string // the challenge_id the client sends back with its answer
	Kind string // PasskeyRegister, PasskeyLogin, PasskeySecondFactor or PasskeyReauth
	// UserID binds the challenge to its user, and SessionID to the session
	// that began it (a registration, a reauthentication) or, for a second
	// factor, to the hash of the mfa_token it answers; both are empty for a
	// usernameless login, whose user is not known until the authenticator
	// names it.
	UserID    string
	SessionID string
	State     []byte // the relying party's ceremony state, opaque here
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Passkey is a registered credential.
type Passkey struct {
	ID           string // sessiond's passkey_id
	UserID       string
	CredentialID []byte // the authenticator's credential id, unique
	Name         string
	// Record is the relying party's credential record (public key,
	// flags, transports, attestation format), opaque here.
	Record []byte
	// SignCount is the authenticator's signature counter at its last use;
	// BackupEligible and BackupState its flags (a synced passkey is
	// eligible). CloneWarning is set when a counter went backwards: the
	// credential is refused from then on.
	SignCount      uint32
	BackupEligible bool
	BackupState    bool
	CloneWarning   bool
	CreatedAt      time.Time
	LastUsedAt     time.Time // zero until first used to sign in
}

// PasskeyTx is the statements of Tx for passkeys.
type PasskeyTx interface {
	// InsertPasskeyChallenge stores c. CodeNotFound if its user is gone.
	InsertPasskeyChallenge(c *PasskeyChallenge) error
	// ConsumePasskeyChallenge deletes the challenge id of that kind and
	// returns it, in one statement, so that of concurrent finishes exactly
	// one gets it; nil if there is none, or it expired by now.
	ConsumePasskeyChallenge(id, kind string, now time.Time) (*PasskeyChallenge, error)
	// UserPasskeys returns the user's passkeys, oldest first.
	UserPasskeys(userID string) ([]Passkey, error)
	// PasskeyByCredentialID returns the passkey with that credential id,
	// locked against a concurrent use until the transaction ends; nil if
	// there is none.
	PasskeyByCredentialID(credentialID []byte) (*Passkey, error)
	// InsertPasskey stores p. CodeInvalidRequest if its credential id is
	// registered already, CodeNotFound if its user is gone.
	InsertPasskey(p *Passkey) error
	// UpdatePasskeyUse stores p's Record, SignCount, BackupState,
	// CloneWarning and LastUsedAt.
	UpdatePasskeyUse(p *Passkey) error
	// RenamePasskey sets the name of the user's passkey id and returns it;
	// nil if the user has no such passkey.
	RenamePasskey(userID, id, name string) (*Passkey, error)
	// DeletePasskey deletes the user's passkey id and returns it; nil if
	// the user has no such passkey.
	DeletePasskey(userID, id string) (*Passkey, error)
}

// PasskeyStore is what the background sweep needs of passkeys.
type PasskeyStore interface {
	// DeleteExpiredPasskeyChallenges deletes at most limit challenges
	// expired by now and returns how many it deleted.
	DeleteExpiredPasskeyChallenges(ctx context.Context, now time.Time, limit int) (int, error)
}

// PasskeyUser is the user a registration is for, as the authenticator
// stores it: the user handle is the user id's bytes (random, and no
// personal data), the name the email address the person recognises.
type PasskeyUser struct {
	ID   string
	Name string
}

// PasskeyAssertion is a parsed login answer: the credential it claims, the
// user handle the authenticator returned, and the relying party's parsed
// form (opaque here).
type PasskeyAssertion struct {
	CredentialID []byte
	UserHandle   []byte
	Parsed       any
}

// PasskeyVerified is what a verified ceremony tells about the credential.
type PasskeyVerified struct {
	CredentialID   []byte
	Record         []byte
	SignCount      uint32
	UserVerified   bool
	BackupEligible bool
	BackupState    bool
	// CloneWarning: the signature counter did not advance past the stored
	// one, so a copy of the key may be in use.
	CloneWarning bool
}

// RelyingParty runs the WebAuthn ceremonies' checks for one relying party
// (RP ID and allowed origins). Options are PublicKeyCredentialCreationOptionsJSON
// and PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3); credentials
// what PublicKeyCredential.toJSON() returns. Errors are CodeInvalidRequest
// for an answer that is malformed or fails a check.
type RelyingParty interface {
	// BeginRegistration returns creation options for u, excluding the
	// credential ids u has, and the state FinishRegistration needs.
	BeginRegistration(u PasskeyUser, exclude [][]byte) (options, state []byte, err error)
	// FinishRegistration verifies a new credential against state.
	FinishRegistration(u PasskeyUser, state, credential []byte) (*PasskeyVerified, error)
	// BeginLogin returns request options and the state FinishLogin needs:
	// with u nil, for any discoverable credential, user verification
	// required (a complete login); otherwise for u's credentials allow,
	// user verification preferred (a proof beside another one).
	BeginLogin(u *PasskeyUser, allow [][]byte) (options, state []byte, err error)
	// ParseAssertion parses a login answer, so that its passkey can be
	// looked up before it is verified. The user handle may be empty.
	ParseAssertion(credential []byte) (*PasskeyAssertion, error)
	// FinishLogin verifies a against state and the stored passkey p.
	FinishLogin(state []byte, a *PasskeyAssertion, p *Passkey) (*PasskeyVerified, error)
}

// PasskeyCeremony is a begun ceremony as a client sees it.
type PasskeyCeremony struct {
	ChallengeID string
	Options     []byte // JSON
}

// PasskeyService is the passkey use cases of the public API. Implemented by
// package auth.
type PasskeyService interface {
	// BeginPasskeyRegistration starts adding a passkey to the principal's
	// user. CodeReauthRequired without a recent sign-in, CodeNotFound when
	// passkeys are not configured.
	BeginPasskeyRegistration(ctx context.Context, p *Principal) (*PasskeyCeremony, error)
	// FinishPasskeyRegistration stores the new passkey. CodeInvalidRequest
	// for an unknown, used, expired or foreign challenge or a credential
	// that fails verification; CodeReauthRequired.
	FinishPasskeyRegistration(ctx context.Context, p *Principal, challengeID string, credential []byte, name string, c ClientInfo) (*Passkey, error)
	// Passkeys lists the principal's user's passkeys, oldest first.
	Passkeys(ctx context.Context, p *Principal) ([]Passkey, error)
	// RenamePasskey renames one of them. CodeNotFound, CodeInvalidRequest.
	RenamePasskey(ctx context.Context, p *Principal, id, name string) (*Passkey, error)
	// DeletePasskey removes one of them. CodeNotFound, CodeReauthRequired.
	DeletePasskey(ctx context.Context, p *Principal, id string, c ClientInfo) error
	// BeginPasskeyLogin starts a usernameless login or, given the
	// mfa_token of a password login that answered CodeMFARequired, that
	// login's second step (finished by MFAService.LoginMFA) for the user's
	// passkeys. CodeRateLimited; CodeInvalidToken for a bad mfa_token.
	BeginPasskeyLogin(ctx context.Context, mfaToken string, c ClientInfo) (*PasskeyCeremony, error)
	// BeginPasskeyReauth starts a reauthentication of the principal's
	// session with one of its user's passkeys (finished by
	// AccountService.Reauthenticate). CodeNotFound if the user has none.
	BeginPasskeyReauth(ctx context.Context, p *Principal) (*PasskeyCeremony, error)
	// FinishPasskeyLogin verifies the assertion and opens a session under
	// the cap. CodeInvalidCredentials for an answer that does not prove a
	// registered passkey with user verification, CodeAccountDisabled.
	FinishPasskeyLogin(ctx context.Context, challengeID string, credential []byte, c ClientInfo) (*Tokens, error)
}
