package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/sessiond/sessiond"
)

// maxBody is the largest request body accepted (docs/API.md: 64 KiB).
const maxBody = 64 << 10

// validator is a request body that can say what is missing or wrong in it.
type validator interface{ valid() error }

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads one JSON object of type T from the body: JSON content type,
// at most maxBody bytes, no trailing data, then T's own validation. Every
// failure is a coded client error, never a 500.
func decode[T validator](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" || r.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return v, sessiond.Errorf(sessiond.CodeUnsupportedMedia, "request body must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		if err == nil {
			return v, sessiond.Errorf(sessiond.CodeInvalidRequest, "request body must hold exactly one JSON object")
		}
		return v, decodeError(err)
	}
	return v, v.valid()
}

func decodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return sessiond.Errorf(sessiond.CodeRequestTooLarge, "request body is larger than %d bytes", maxBody)
	case errors.Is(err, io.EOF):
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "request body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "request body is truncated JSON")
	case errors.As(err, &syntax):
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "request body must be a JSON object")
		}
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "field %q must be a %s", typ.Field, jsonKind(typ.Type.Kind().String()))
	default:
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "malformed JSON: %v", err)
	}
}

func jsonKind(goKind string) string {
	if goKind == "string" {
		return "string"
	}
	return fmt.Sprintf("JSON value fitting %s", goKind)
}

// required reports the first empty field by name, as an invalid_request.
func required(fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "field %q is required", f[0])
		}
	}
	return nil
}
