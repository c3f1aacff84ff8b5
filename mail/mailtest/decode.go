package mailtest

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net/url"
	"strings"
)

func quotedPrintable(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }

// base64Reader decodes base64 that is broken into lines.
func base64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
}

type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

func unescape(s string) (string, error) { return url.QueryUnescape(strings.TrimSpace(s)) }
