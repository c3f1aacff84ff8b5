package pgtest

import "testing"

// An internal test because withDatabase is unexported; it is pure string
// handling, so it runs without a server.
func TestWithDatabase(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"},
		{"postgresql://u:p@h/test", "postgresql://u:p@h/x"},
		{"postgres://u@h1:5432,h2:5433/test?target_session_attrs=read-write", "postgres://u@h1:5432,h2:5433/x?target_session_attrs=read-write"},
		{"postgres://u@h:5432?sslmode=disable", "postgres://u@h:5432/x?sslmode=disable"},
		{"postgres://u@h:5432/", "postgres://u@h:5432/x"},
		{"host=h user=u dbname=test", "host=h user=u dbname=test dbname=x"},
	}
	for _, tt := range tests {
		if got := withDatabase(tt.in, "x"); got != tt.want {
			t.Errorf("withDatabase(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
