package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Key signs proofs: a client's half of DPoP.
type Key struct {
	signer crypto.Signer
	alg    string
	jwk    json.RawMessage
	pub    *publicKey
}

// NewKey generates a P-256 key, the algorithm every DPoP server supports.
func NewKey() *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	key, err := KeyFrom(k)
	if err != nil {
		panic(err)
	}
	return key
}

// KeyFrom makes a Key of an existing private key, so that a device can keep
// its key across runs: an *ecdsa.PrivateKey on P-256 (ES256) or an
// ed25519.PrivateKey (EdDSA).
func KeyFrom(signer crypto.Signer) (*Key, error) {
	var j jwk
	var alg string
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("dpop: only P-256 ECDSA keys are supported")
		}
		raw, err := k.PublicKey.Bytes() // 0x04 || x || y
		if err != nil {
			return nil, err
		}
		j = jwk{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:])}
		alg = "ES256"
	case ed25519.PrivateKey:
		j = jwk{Kty: "OKP", Crv: "Ed25519", X: b64(k.Public().(ed25519.PublicKey))}
		alg = "EdDSA"
	default:
		return nil, errors.New("dpop: the key must be ECDSA P-256 or Ed25519")
	}
	raw, err := json.Marshal(struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y,omitempty"`
	}{j.Kty, j.Crv, j.X, j.Y})
	if err != nil {
		return nil, err
	}
	pub, err := parseJWK(raw)
	if err != nil {
		return nil, err
	}
	return &Key{signer: signer, alg: alg, jwk: raw, pub: pub}, nil
}

// Thumbprint is the key's RFC 7638 thumbprint, the "jkt" of tokens bound to it.
func (k *Key) Thumbprint() string { return k.pub.thumbprint() }

// Signer is the private key.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Claims of a proof to sign; Method and URL are required.
type Claims struct {
	Method      string
	URL         string // query and fragment are dropped
	AccessToken string // when set, the proof carries its "ath"
	Nonce       string // the server's, when it gave one
	Now         time.Time
}

// Proof signs a proof for one request, with a random "jti".
func (k *Key) Proof(c Claims) (string, error) {
	if c.Method == "" || c.URL == "" {
		return "", errors.New("dpop: a proof needs a method and a URL")
	}
	htu, ok := normalURL(c.URL)
	if !ok {
		return "", errors.New("dpop: the URL must be absolute http or https")
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	var jti [16]byte
	rand.Read(jti[:])
	h, err := json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{"dpop+jwt", k.alg, k.jwk})
	if err != nil {
		return "", err
	}
	body := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{JTI: b64(jti[:]), HTM: c.Method, HTU: htu, IAT: c.Now.Unix(), Nonce: c.Nonce}
	if c.AccessToken != "" {
		body.ATH = AccessTokenHash(c.AccessToken)
	}
	p, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(p)
	sig, err := k.sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

func (k *Key) sign(input []byte) ([]byte, error) {
	if k.alg == "EdDSA" {
		return k.signer.Sign(rand.Reader, input, crypto.Hash(0))
	}
	digest := sha256.Sum256(input)
	der, err := k.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// JWS wants r || s, not the ASN.1 crypto.Signer returns.
	return derToRaw(der)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
