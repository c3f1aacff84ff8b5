package dpop

import (
	"encoding/asn1"
	"errors"
	"math/big"
)

// derToRaw turns an ASN.1 ECDSA signature into JWS's fixed-size r || s.
func derToRaw(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, errors.New("dpop: malformed ECDSA signature")
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}
