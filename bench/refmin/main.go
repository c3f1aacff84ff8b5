// Command refmin is the bare-minimum refresh server that sessiond's refresh
// path is measured against (docs/BENCHMARKS.md, target 1): per refresh, one
// indexed UPDATE ... RETURNING that checks expiry, swaps the token hash and
// stamps last_used_at, and one Ed25519 JWT signature. Nothing else: no
// rotation grace, no reuse detection, no metrics, no problem documents.
//
// It speaks just enough of sessiond's API for `sessiond bench -op refresh`:
// signup is accepted and ignored, login inserts a session. It uses the same
// drivers and SQLite settings as sessiond, on a table of its own.
//
//	go run ./bench/refmin -addr 127.0.0.1:8090 -db sqlite:/tmp/refmin.db
//	go run ./bench/refmin -addr 127.0.0.1:8090 -db postgres://postgres@127.0.0.1:5432/bench
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"
)

const (
	accessTTL  = 15 * time.Minute
	sessionTTL = 720 * time.Hour
	idleTTL    = 168 * time.Hour
)

// store is the one statement that matters, on either database.
type store interface {
	insert(ctx context.Context, hash []byte, id, user string, now time.Time) error
	swap(ctx context.Context, old, new []byte, now time.Time) (id, user string, err error)
}

type sqliteStore struct{ w *sql.DB }

func (s sqliteStore) insert(ctx context.Context, hash []byte, id, user string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO refmin_sessions (token_hash, id, user_id, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hash, id, user, now.UnixMicro(), now.Add(sessionTTL).UnixMicro())
	return err
}

func (s sqliteStore) swap(ctx context.Context, old, new []byte, now time.Time) (id, user string, err error) {
	err = s.w.QueryRowContext(ctx, `UPDATE refmin_sessions SET token_hash = ?, last_used_at = ?
		WHERE token_hash = ? AND expires_at > ? AND last_used_at > ? RETURNING id, user_id`,
		new, now.UnixMicro(), old, now.UnixMicro(), now.Add(-idleTTL).UnixMicro()).Scan(&id, &user)
	return id, user, err
}

type pgStore struct{ p *pgxpool.Pool }

func (s pgStore) insert(ctx context.Context, hash []byte, id, user string, now time.Time) error {
	_, err := s.p.Exec(ctx, `INSERT INTO refmin_sessions (token_hash, id, user_id, last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		hash, id, user, now, now.Add(sessionTTL))
	return err
}

func (s pgStore) swap(ctx context.Context, old, new []byte, now time.Time) (id, user string, err error) {
	err = s.p.QueryRow(ctx, `UPDATE refmin_sessions SET token_hash = $1, last_used_at = $2
		WHERE token_hash = $3 AND expires_at > $2 AND last_used_at > $4 RETURNING id, user_id`,
		new, now, old, now.Add(-idleTTL)).Scan(&id, &user)
	return id, user, err
}

func open(ctx context.Context, url string) (store, error) {
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		// The same settings as sessiond's writer: WAL, synchronous=NORMAL,
		// one connection.
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS refmin_sessions (
			token_hash BLOB PRIMARY KEY, id TEXT NOT NULL, user_id TEXT NOT NULL,
			last_used_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) STRICT`)
		return sqliteStore{db}, err
	}
	p, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	_, err = p.Exec(ctx, `CREATE TABLE IF NOT EXISTS refmin_sessions (
		token_hash bytea PRIMARY KEY, id text NOT NULL, user_id text NOT NULL,
		last_used_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)`)
	return pgStore{p}, err
}

type server struct {
	db   store
	priv ed25519.PrivateKey
	kid  string
}

type tokens struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	SessionID        string `json:"session_id"`
}

func (s *server) answer(w http.ResponseWriter, id, user, rt string, now time.Time) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "refmin", "aud": "sessiond", "sub": user, "sid": id,
		"iat": now.Unix(), "exp": now.Add(accessTTL).Unix(), "jti": random(16),
	})
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = s.kid
	at, err := t.SignedString(s.priv)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(tokens{at, "Bearer", int(accessTTL.Seconds()), rt, int(idleTTL.Seconds()), id})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	rt, id := random(32), random(16)
	h := sha256.Sum256([]byte(rt))
	if err := s.db.insert(r.Context(), h[:], id, "user-"+id, now); err != nil {
		http.Error(w, err.Error(), 503)
		return
	}
	s.answer(w, id, "user-"+id, rt, now)
}

func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	now := time.Now()
	old := sha256.Sum256([]byte(req.RefreshToken))
	rt := random(32)
	h := sha256.Sum256([]byte(rt))
	id, user, err := s.db.swap(r.Context(), old[:], h[:], now)
	if err != nil {
		http.Error(w, `{"code":"invalid_refresh_token"}`, 401)
		return
	}
	s.answer(w, id, user, rt, now)
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	url := flag.String("db", "sqlite:refmin.db", "sqlite:PATH or postgres://...")
	flag.Parse()
	db, err := open(context.Background(), *url)
	if err != nil {
		log.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	s := &server{db: db, priv: priv, kid: "refmin"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/signup", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("POST /v1/login", s.login)
	mux.HandleFunc("POST /v1/refresh", s.refresh)
	fmt.Fprintf(os.Stdout, "refmin listening on http://%s\n", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
