package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
)

// Parsed is a received mail taken apart: its headers, and the text of its
// plain and HTML parts, transfer encoding undone and lines ending in \n.
type Parsed struct {
	Header mail.Header
	Text   string
	HTML   string
}

// Parse reads a mail with a text/plain body, or a multipart/alternative
// one of text/plain and text/html.
func Parse(data []byte) (Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return Parsed{}, fmt.Errorf("mailtest: read message: %w", err)
	}
	p := Parsed{Header: msg.Header}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Parsed{}, fmt.Errorf("mailtest: Content-Type: %w", err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		body, err := decodeBody(msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		if err != nil {
			return Parsed{}, err
		}
		switch mediaType {
		case "text/plain":
			p.Text = body
		case "text/html":
			p.HTML = body
		default:
			return Parsed{}, fmt.Errorf("mailtest: unexpected body type %s", mediaType)
		}
		return p, nil
	}
	if mediaType != "multipart/alternative" {
		return Parsed{}, fmt.Errorf("mailtest: unexpected body type %s", mediaType)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Parsed{}, fmt.Errorf("mailtest: next part: %w", err)
		}
		// NextPart has already undone quoted-printable.
		body, err := decodeBody(part.Header.Get("Content-Transfer-Encoding"), part)
		if err != nil {
			return Parsed{}, err
		}
		t, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch t {
		case "text/plain":
			p.Text = body
		case "text/html":
			p.HTML = body
		default:
			return Parsed{}, fmt.Errorf("mailtest: unexpected part type %s", t)
		}
	}
	return p, nil
}

func decodeBody(encoding string, r io.Reader) (string, error) {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	case "", "7bit", "8bit", "binary":
	default:
		return "", fmt.Errorf("mailtest: unexpected transfer encoding %s", encoding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("mailtest: decode body: %w", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

var tokenRE = regexp.MustCompile(`#token=([A-Za-z0-9_%.~-]+)`)

// Token is the token of the first link in text that carries one
// ("…#token=…"), unescaped; empty if there is none.
func Token(text string) string {
	m := tokenRE.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		return ""
	}
	return tok
}

// newlineStripper drops the line breaks of base64 body text.
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
