package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// softAuthenticator is a WebAuthn authenticator in Go, for tests: one ES256
// discoverable credential, "none" attestation, authenticator data with the
// RP ID hash, flags and signature counter it is told to put there, and
// client data as a browser at origin would write it. It answers with what
// PublicKeyCredential.toJSON() returns.
type softAuthenticator struct {
	t      *testing.T
	origin string
	rpID   string
	key    *ecdsa.PrivateKey
	credID []byte
	// userHandle is the user.id the registration options named.
	userHandle []byte
	counter    uint32
	// uv, be, bs: the user-verified, backup-eligible and backup-state
	// flags it sets.
	uv, be, bs bool
}

func newSoftAuthenticator(t *testing.T, origin, rpID string) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softAuthenticator{t: t, origin: origin, rpID: rpID, key: key, credID: id, uv: true}
}

var b64 = base64.RawURLEncoding

// Flags of authenticator data (WebAuthn §6.1).
const (
	flagUP = 1 << 0
	flagUV = 1 << 2
	flagBE = 1 << 3
	flagBS = 1 << 4
	flagAT = 1 << 6
)

func (a *softAuthenticator) authData(attested []byte) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	flags := byte(flagUP)
	if a.uv {
		flags |= flagUV
	}
	if a.be {
		flags |= flagBE
	}
	if a.bs {
		flags |= flagBS
	}
	if attested != nil {
		flags |= flagAT
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.counter)
	return append(out, attested...)
}

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}

// options decodes a ceremony's options.
func ceremonyOptions(t *testing.T, r *response) (challengeID string, options map[string]any) {
	t.Helper()
	options, _ = r.Body["options"].(map[string]any)
	if r.str("challenge_id") == "" || options == nil {
		t.Fatalf("ceremony: got %s, want challenge_id and options", r.Raw)
	}
	return r.str("challenge_id"), options
}

// create answers creation options (the "options" of register/begin).
func (a *softAuthenticator) create(options map[string]any) map[string]any {
	a.t.Helper()
	challenge, _ := options["challenge"].(string)
	user, _ := options["user"].(map[string]any)
	uid, _ := user["id"].(string)
	handle, err := b64.DecodeString(uid)
	if err != nil {
		a.t.Fatalf("user.id %q is not base64url: %v", uid, err)
	}
	a.userHandle = handle
	x, y := a.key.PublicKey.X.FillBytes(make([]byte, 32)), a.key.PublicKey.Y.FillBytes(make([]byte, 32))
	// COSE_Key, EC2 on P-256 for ES256: {1: 2, 3: -7, -1: 1, -2: x, -3: y}
	cose := cborMap(5)
	cose = append(cose, cborInt(1)...)
	cose = append(cose, cborInt(2)...)
	cose = append(cose, cborInt(3)...)
	cose = append(cose, cborInt(-7)...)
	cose = append(cose, cborInt(-1)...)
	cose = append(cose, cborInt(1)...)
	cose = append(cose, cborInt(-2)...)
	cose = append(cose, cborBytes(x)...)
	cose = append(cose, cborInt(-3)...)
	cose = append(cose, cborBytes(y)...)
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.credID)))
	attested = append(attested, a.credID...)
	attested = append(attested, cose...)
	authData := a.authData(attested)
	att := cborMap(3)
	att = append(att, cborText("fmt")...)
	att = append(att, cborText("none")...)
	att = append(att, cborText("attStmt")...)
	att = append(att, cborMap(0)...)
	att = append(att, cborText("authData")...)
	att = append(att, cborBytes(authData)...)
	return map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	}
}

// get answers request options (the "options" of login/passkey/begin)
// with the counter as it is.
func (a *softAuthenticator) get(options map[string]any) map[string]any {
	a.t.Helper()
	challenge, _ := options["challenge"].(string)
	authData := a.authData(nil)
	cd := a.clientData("webauthn.get", challenge)
	h := sha256.Sum256(cd)
	// ES256 signs SHA-256(authenticatorData || SHA-256(clientDataJSON)).
	digest := sha256.Sum256(append(append([]byte{}, authData...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(authData),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(a.userHandle),
		},
		"clientExtensionResults": map[string]any{},
	}
}

// A little CBOR (RFC 8949), enough for attestation objects and COSE keys.

func cborHead(major byte, n uint64) []byte {
	switch {
	case n < 24:
		return []byte{major<<5 | byte(n)}
	case n < 1<<8:
		return []byte{major<<5 | 24, byte(n)}
	case n < 1<<16:
		return binary.BigEndian.AppendUint16([]byte{major<<5 | 25}, uint16(n))
	default:
		return binary.BigEndian.AppendUint32([]byte{major<<5 | 26}, uint32(n))
	}
}

func cborInt(v int) []byte {
	if v < 0 {
		return cborHead(1, uint64(-1-v))
	}
	return cborHead(0, uint64(v))
}
func cborBytes(b []byte) []byte { return append(cborHead(2, uint64(len(b))), b...) }
func cborText(s string) []byte  { return append(cborHead(3, uint64(len(s))), s...) }
func cborMap(n int) []byte      { return cborHead(5, uint64(n)) }
