package app_test

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/app"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"userinfo password", "postgres://u:S3CRET@db:5432/s?sslmode=require", "postgres://u:xxxxx@db:5432/s?sslmode=require"},
		{"password parameter", "postgres://u@db/s?sslmode=disable&password=S3CRET", "postgres://u@db/s?sslmode=disable&password=xxxxx"},
		{"sslpassword parameter", "postgresql://db/s?sslkey=/k.pem&sslpassword=S3CRET", "postgresql://db/s?sslkey=/k.pem&sslpassword=xxxxx"},
		{"percent-encoded name", "postgres://db/s?pass%77ord=S3CRET", "postgres://db/s?pass%77ord=xxxxx"},
		{"upper-case name", "postgres://db/s?PASSWORD=S3CRET", "postgres://db/s?PASSWORD=xxxxx"},
		{"every part at once", "postgres://u:S3CRET@db/s?password=S3CRET&sslpassword=S3CRET",
			"postgres://u:xxxxx@db/s?password=xxxxx&sslpassword=xxxxx"},
		{"smtp userinfo", "smtp://mailer:S3CRET@smtp.example.com:587", "smtp://mailer:xxxxx@smtp.example.com:587"},
		{"unparseable URL", "postgres://u:S3%zzCRET@db/s", "postgres://xxxxx (not a valid URL; shown no further)"},
		{"keyword/value string", "host=db user=u password=S3CRET sslmode=disable", "host=db user=u password=xxxxx sslmode=disable"},
		{"quoted keyword value", "host=db password='S3 CRET' sslpassword=S3CRET", "host=db password=xxxxx sslpassword=xxxxx"},
		{"no secret", "postgres://u@db:5432/s?sslmode=disable", "postgres://u@db:5432/s?sslmode=disable"},
		{"sqlite path", "sqlite:/var/lib/sessiond/s.db", "sqlite:/var/lib/sessiond/s.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := app.RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "S3") || strings.Contains(got, "CRET") {
				t.Errorf("got %q, which shows the secret", got)
			}
		})
	}
}

func TestRedactArgs(t *testing.T) {
	in := []string{"sessiond", "serve", "-database-url", "postgres://u:S3CRET@db/s?sslpassword=S3CRET",
		"--database-url=postgres://db/s?password=S3CRET", "-encryption-key", "S3CRET", "-encryption-key=S3CRET",
		"-smtp-url=smtp://m:S3CRET@mx:587", "-max-sessions", "5", "-key-reload=30s"}
	want := []string{"sessiond", "serve", "-database-url", "postgres://u:xxxxx@db/s?sslpassword=xxxxx",
		"--database-url=postgres://db/s?password=xxxxx", "-encryption-key", "xxxxx", "-encryption-key=xxxxx",
		"-smtp-url=smtp://m:xxxxx@mx:587", "-max-sessions", "5", "-key-reload=30s"}
	got := app.RedactArgs(in)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestCmdlineHidesSecretFlags: the admin listener's /debug/pprof/cmdline
// shows the command line without the secrets given as flags.
func TestCmdlineHidesSecretFlags(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"sessiond", "-database-url", "postgres://u:S3CRET@db/s?password=S3CRET"}
	rec := httptest.NewRecorder()
	app.Cmdline(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
	if got, want := rec.Body.String(), "sessiond\x00-database-url\x00postgres://u:xxxxx@db/s?password=xxxxx"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
