package socketcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/internal/fixture"
	"github.com/socketcluster-go/socketcluster/protocol"
)

var authKey = []byte("test-secret")

func sign(t *testing.T, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyJWT checks a token as any HS256 JWT library would.
func verifyJWT(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(token, claims, func(tk *jwt.Token) (any, error) { return authKey, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !tok.Valid {
		t.Fatalf("token %s does not verify: %v", token, err)
	}
	if tok.Header["typ"] != "JWT" {
		t.Fatalf("header %v", tok.Header)
	}
	return claims
}

func tokenFrom(t *testing.T, frame string) string {
	t.Helper()
	var p struct {
		Event string `json:"event"`
		Data  struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(frame), &p); err != nil || p.Event != "#setAuthToken" || p.Data.Token == "" {
		t.Fatalf("not a #setAuthToken packet: %s", frame)
	}
	return p.Data.Token
}

// docs/protocol.md §14.2: login through a procedure, then reconnect with the
// token.
func TestLoginAndReconnectWithToken(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey}, fixture.Install)
	c, s := ts.connect(t, nil)
	authEvents := sc.Listen[sc.AuthenticateEvent](s).Consumer()
	defer authEvents.Stop()
	signed := sc.Listen[sc.AuthTokenSignedEvent](s).Consumer()
	defer signed.Stop()

	cid := c.NextCid()
	c.SendText(fmt.Sprintf(`{"event":"login","data":"alice","cid":%d}`, int(cid)))
	c.Expect(fmt.Sprintf(`{"rid":%d,"error":{"message":"login needs a non-empty string username","name":"LoginError"}}`, int(cid)))

	cid = c.NextCid()
	c.SendText(fmt.Sprintf(`{"event":"login","data":{"username":"alice"},"cid":%d}`, int(cid)))
	var token string
	for range 2 {
		f := c.NextText()
		if strings.HasPrefix(f, `{"event":"#setAuthToken","data":{"token":"`) {
			token = tokenFrom(t, f)
		} else if f != fmt.Sprintf(`{"rid":%d,"data":"ok"}`, int(cid)) {
			t.Fatalf("unexpected frame %s", f)
		}
	}
	claims := verifyJWT(t, token)
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["username"] != "alice" || exp-iat != 86400 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		t.Fatalf("claims %v", claims)
	}
	if s.AuthState() != protocol.Authenticated || s.SignedAuthToken() != token || s.AuthToken()["username"] != "alice" {
		t.Fatalf("socket auth %s %v", s.AuthState(), s.AuthToken())
	}
	if ev := next(t, signed); ev.SignedAuthToken != token {
		t.Fatalf("authTokenSigned %+v", ev)
	}
	if ev := next(t, authEvents); ev.AuthToken["username"] != "alice" {
		t.Fatalf("authenticate %+v", ev)
	}
	r := c.Invoke("whoami", nil)
	jsonEq(t, string(r.Data), fmt.Sprintf(`{"username":"alice","iat":%d,"exp":%d}`, int64(iat), int64(exp)))

	// Reconnect with the token: authenticated from the handshake on.
	conns := sc.Listen[sc.AuthenticationEvent](ts).Consumer()
	defer conns.Stop()
	c2 := ts.dial(t, nil)
	c2.SendText(fmt.Sprintf(`{"event":"#handshake","data":{"authToken":%q},"cid":9}`, token))
	c2.ExpectMatch(`\{"rid":9,"data":\{"id":"[A-Za-z0-9_-]{20}","pingTimeout":30000,"isAuthenticated":true\}\}`)
	if ev := next(t, conns); ev.AuthToken["username"] != "alice" {
		t.Fatalf("authentication event %+v", ev)
	}
	c2.Subscribe("high")
	if r := c2.Invoke("whoami", nil); !strings.Contains(string(r.Data), `"username":"alice"`) {
		t.Fatalf("whoami after reconnect: %s", r.Raw)
	}
}

// docs/protocol.md §3.3.1 and §14.3: a refused token is not a refused
// handshake; bad tokens are followed by #removeAuthToken.
func TestHandshakeWithBadTokens(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey})
	now := time.Now()
	expired := sign(t, authKey, jwt.MapClaims{"username": "x", "exp": now.Add(-time.Hour).Unix()})
	expISO := time.Unix(now.Add(-time.Hour).Unix(), 0).UTC().Format("2006-01-02T15:04:05.000Z")
	nbf := now.Add(time.Hour).Unix()
	notYet := sign(t, authKey, jwt.MapClaims{"username": "x", "nbf": nbf})
	nbfISO := time.Unix(nbf, 0).UTC().Format("2006-01-02T15:04:05.000Z")
	for _, tc := range []struct {
		name   string
		token  string // JSON value
		err    string
		remove bool
	}{
		{"garbage", `"garbage"`, `{"message":"jwt malformed","name":"AuthTokenInvalidError","isBadToken":true}`, true},
		{"wrong key", fmt.Sprintf("%q", sign(t, []byte("other"), jwt.MapClaims{"u": 1})), `{"message":"invalid signature","name":"AuthTokenInvalidError","isBadToken":true}`, true},
		{"expired", fmt.Sprintf("%q", expired), `{"message":"jwt expired","name":"AuthTokenExpiredError","expiry":"` + expISO + `","isBadToken":true}`, true},
		{"not before", fmt.Sprintf("%q", notYet), `{"message":"jwt not active","name":"AuthTokenNotBeforeError","date":"` + nbfISO + `","isBadToken":false}`, false},
		{"not a string", `123`, `{"message":"Invalid token format - Token must be a string","name":"AuthTokenError","isBadToken":true}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := sc.Listen[sc.BadSocketAuthTokenEvent](ts).Consumer()
			defer bad.Stop()
			c := ts.dial(t, nil)
			c.SendText(`{"event":"#handshake","data":{"authToken":` + tc.token + `},"cid":1}`)
			want := `{"rid":1,"data":{"id":"<id>","pingTimeout":30000,"authError":` + tc.err + `,"isAuthenticated":false}}`
			if got := maskID(c.NextText()); got != want {
				t.Fatalf("\n got: %s\nwant: %s", got, want)
			}
			if tc.remove {
				c.Expect(`{"event":"#removeAuthToken"}`)
				if ev := next(t, bad); ev.SignedAuthToken == "" && tc.name != "not a string" {
					t.Fatalf("badSocketAuthToken %+v", ev)
				}
			}
			barrier(t, c)
			if !tc.remove && bad.Backpressure() != 0 {
				t.Fatal("badSocketAuthToken for a not-before token")
			}
		})
	}
}

// docs/protocol.md §3.4: #authenticate.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	var blockUser = "mallory"
	ts := newServer(t, sc.Options{AuthKey: authKey}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionAuthenticate && a.AuthToken["username"] == blockUser {
				return sc.NewError("AuthBlocked", "user blocked")
			}
			return nil
		})
	})
	good := sign(t, authKey, jwt.MapClaims{"username": "bob"})
	blocked := sign(t, authKey, jwt.MapClaims{"username": blockUser})
	c, s := ts.connect(t, nil)
	states := sc.Listen[sc.AuthStateChangeEvent](s).Consumer()
	defer states.Stop()

	cid := int(c.NextCid())
	c.SendText(fmt.Sprintf(`{"event":"#authenticate","data":%q,"cid":%d}`, good, cid))
	c.Expect(fmt.Sprintf(`{"rid":%d,"data":{"isAuthenticated":true,"authError":null}}`, cid))
	if ev := next(t, states); ev.OldAuthState != protocol.Unauthenticated || ev.NewAuthState != protocol.Authenticated || ev.AuthToken["username"] != "bob" {
		t.Fatalf("authStateChange %+v", ev)
	}
	if s.SignedAuthToken() != good {
		t.Fatal("signed token not stored")
	}

	cid = int(c.NextCid())
	c.SendText(fmt.Sprintf(`{"event":"#authenticate","data":"garbage","cid":%d}`, cid))
	c.Expect(fmt.Sprintf(`{"rid":%d,"error":{"message":"jwt malformed","name":"AuthTokenInvalidError","isBadToken":true}}`, cid))
	c.Expect(`{"event":"#removeAuthToken"}`)
	if s.AuthState() != protocol.Unauthenticated || s.AuthToken() != nil {
		t.Fatalf("still authenticated after a bad token")
	}
	if ev := next(t, states); ev.NewAuthState != protocol.Unauthenticated {
		t.Fatalf("authStateChange %+v", ev)
	}

	for _, data := range []string{`,"data":null`, ``} {
		cid = int(c.NextCid())
		c.SendText(fmt.Sprintf(`{"event":"#authenticate"%s,"cid":%d}`, data, cid))
		c.Expect(fmt.Sprintf(`{"rid":%d,"error":{"message":"jwt must be provided","name":"AuthTokenInvalidError","isBadToken":true}}`, cid))
		c.Expect(`{"event":"#removeAuthToken"}`)
	}

	cid = int(c.NextCid())
	c.SendText(fmt.Sprintf(`{"event":"#authenticate","data":%q,"cid":%d}`, blocked, cid))
	c.Expect(fmt.Sprintf(`{"rid":%d,"data":{"isAuthenticated":false,"authError":{"message":"user blocked","name":"AuthBlocked"}}}`, cid))
	barrier(t, c) // no #removeAuthToken for a middleware block
	if s.AuthState() != protocol.Unauthenticated {
		t.Fatal("authenticated despite the AUTHENTICATE block")
	}

	// The handshake's token goes through the same middleware.
	c2 := ts.dial(t, nil)
	c2.SendText(fmt.Sprintf(`{"event":"#handshake","data":{"authToken":%q},"cid":1}`, blocked))
	if got := maskID(c2.NextText()); got != `{"rid":1,"data":{"id":"<id>","pingTimeout":30000,"authError":{"message":"user blocked","name":"AuthBlocked"},"isAuthenticated":false}}` {
		t.Fatalf("handshake with a blocked user: %s", got)
	}
	barrier(t, c2)
}

// Deauthentication from either side (docs/protocol.md §3.5, §6.6, §14.6).
func TestDeauthenticate(t *testing.T) {
	// Not parallel: a 200 ms ack timeout.
	ts := newServer(t, sc.Options{AuthKey: authKey, AckTimeout: 200 * time.Millisecond})
	token := sign(t, authKey, jwt.MapClaims{"username": "bob"})
	c := ts.dial(t, nil)
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	if h := c.Handshake(token); !h.IsAuthenticated {
		t.Fatalf("handshake %s", h.Raw)
	}
	ev := next(t, conns)
	s := ev.Socket
	if !ev.IsAuthenticated {
		t.Fatal("connection event not authenticated")
	}
	deauths := sc.Listen[sc.DeauthenticateEvent](s).Consumer()
	defer deauths.Stop()

	// The client drops its token: nothing is sent back.
	c.SendText(`{"event":"#removeAuthToken","cid":50}`)
	barrier(t, c)
	if s.AuthState() != protocol.Unauthenticated {
		t.Fatal("#removeAuthToken ignored")
	}
	if d := next(t, deauths); d.OldAuthToken["username"] != "bob" {
		t.Fatalf("deauthenticate %+v", d)
	}

	// The server drops it.
	if err := s.SetAuthToken(ctxT(t), sc.AuthToken{"username": "carol"}, nil); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, c.NextText())
	s.Deauthenticate()
	c.Expect(`{"event":"#removeAuthToken"}`)

	// With delivery confirmation.
	done := make(chan error, 1)
	go func() { done <- s.DeauthenticateConfirmed(context.Background()) }()
	m := c.ExpectMatch(`\{"event":"#removeAuthToken","cid":(\d+)\}`)
	c.SendText(`{"rid":` + m[1] + `}`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- s.SetAuthToken(context.Background(), sc.AuthToken{"username": "dave"}, &sc.SetAuthTokenOptions{RejectOnFailedDelivery: true})
	}()
	m = c.ExpectMatch(`\{"event":"#setAuthToken","cid":(\d+),"data":\{"token":"[^"]+"\}\}`)
	c.SendText(`{"rid":` + m[1] + `}`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Not confirmed: AuthError after the ack timeout.
	go func() {
		done <- s.SetAuthToken(context.Background(), sc.AuthToken{"username": "erin"}, &sc.SetAuthTokenOptions{RejectOnFailedDelivery: true})
	}()
	c.ExpectMatch(`\{"event":"#setAuthToken","cid":\d+,"data":\{"token":"[^"]+"\}\}`)
	e := asError(t, <-done, "AuthError")
	if !strings.HasPrefix(e.Message, "Failed to deliver auth token to client - ") {
		t.Fatalf("message %q", e.Message)
	}
}

func TestSetAuthTokenErrors(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey})
	hs := sc.Listen[sc.HandshakeEvent](ts).Consumer()
	defer hs.Stop()
	c := ts.dial(t, nil)
	pending := next(t, hs).Socket
	e := asError(t, pending.SetAuthToken(ctxT(t), sc.AuthToken{"u": 1}, nil), "InvalidActionError")
	if e.Message != "Cannot call setAuthToken before completing the handshake" {
		t.Fatalf("message %q", e.Message)
	}
	c.Handshake(nil)

	// Payload exp wins over ExpiresIn; a conflict closes with 4002.
	exp := time.Now().Add(50 * time.Second).Unix()
	if err := pending.SetAuthToken(ctxT(t), sc.AuthToken{"u": 1, "exp": exp}, &sc.SetAuthTokenOptions{SignOptions: auth.SignOptions{ExpiresIn: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if claims := verifyJWT(t, tokenFrom(t, c.NextText())); claims["exp"] != float64(exp) {
		t.Fatalf("exp %v, want %d", claims["exp"], exp)
	}
	err := pending.SetAuthToken(ctxT(t), sc.AuthToken{"iss": "me"}, &sc.SetAuthTokenOptions{SignOptions: auth.SignOptions{Issuer: "other"}})
	if err == nil {
		t.Fatal("conflicting issuer accepted")
	}
	code, reason, _ := c.ExpectClose()
	if code != 4002 || reason == "" {
		t.Fatalf("close %d %q", code, reason)
	}
}

// A token that expires mid-session is dropped on the next message: the
// middleware sees AuthTokenExpiredError and the client gets
// #removeAuthToken (docs/protocol.md §6.6).
func TestTokenExpiresMidSession(t *testing.T) {
	t.Parallel()
	seen := make(chan sc.Action, 4)
	ts := newServer(t, sc.Options{AuthKey: authKey}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Procedure == "needsAuth" {
				seen <- *a
				if a.AuthTokenExpiredError != nil {
					return a.AuthTokenExpiredError
				}
			}
			return nil
		})
	})
	ts.HandleProcedure("needsAuth", func(r *sc.Request) { _ = r.End("fine") })
	c, s := ts.connect(t, nil)
	exp := time.Now().Add(-10 * time.Second).Unix()
	if err := s.SetAuthToken(ctxT(t), sc.AuthToken{"username": "x", "exp": exp}, nil); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, c.NextText())
	if s.AuthState() != protocol.Authenticated {
		t.Fatal("not authenticated after SetAuthToken")
	}
	cid := int(c.NextCid())
	c.SendText(fmt.Sprintf(`{"event":"needsAuth","cid":%d}`, cid))
	c.Expect(`{"event":"#removeAuthToken"}`)
	c.Expect(fmt.Sprintf(`{"rid":%d,"error":{"message":"The socket auth token has expired","name":"AuthTokenExpiredError","expiry":%d}}`, cid, exp))
	a := <-seen
	if a.AuthTokenExpiredError == nil || a.Socket.AuthState() != protocol.Unauthenticated {
		t.Fatalf("action %+v", a)
	}
	// The next message has no expired token any more.
	if r := c.Invoke("needsAuth", 1); string(r.Data) != `"fine"` {
		t.Fatalf("%s", r.Raw)
	}
	if a := <-seen; a.AuthTokenExpiredError != nil {
		t.Fatal("expiry reported twice")
	}
}

// An expired token is also noticed on a pong.
func TestTokenExpiryNoticedOnPong(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey})
	c, s := ts.connect(t, nil)
	if err := s.SetAuthToken(ctxT(t), sc.AuthToken{"exp": time.Now().Add(-time.Second).Unix()}, nil); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, c.NextText())
	c.Pong()
	c.Expect(`{"event":"#removeAuthToken"}`)
	if s.AuthState() != protocol.Unauthenticated {
		t.Fatal("still authenticated")
	}
}
