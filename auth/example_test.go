package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

func Example() {
	ctx := context.Background()
	// A fixed clock makes the output reproducible; leave Now nil in real use.
	issued := time.Date(2026, 11, 21, 2, 47, 32, 0, time.UTC)
	j, err := auth.New(auth.Options{Key: []byte("my secret"), Now: func() time.Time { return issued }})
	if err != nil {
		panic(err)
	}

	// What socket.setAuthToken({username: "alice"}) signs and stores.
	token, claims, err := j.Sign(ctx, map[string]any{"username": "alice"}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(token) // the same bytes as jsonwebtoken.sign on the reference
	fmt.Println(claims["username"], "valid for", time.Duration(claims["exp"].(float64)-claims["iat"].(float64))*time.Second)

	// What the server does with the token the client sends back.
	verified, err := j.Verify(ctx, token, issued.Add(time.Hour))
	fmt.Println(verified["username"], err)

	// A day later the token has expired; the error is what goes on the wire.
	_, err = j.Verify(ctx, token, issued.Add(24*time.Hour))
	wire, _ := auth.AsTokenError(err).MarshalJSON()
	fmt.Println(string(wire))

	_, err = j.Verify(ctx, "garbage", issued)
	fmt.Println(err, auth.IsBadToken(err))
	// Output:
	// eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MjI5MjUyLCJleHAiOjE3OTUzMTU2NTJ9.0A7_qYeMCn2sat9kBrVTBg3LGuJ893-BbQhcJ8ABGJc
	// alice valid for 24h0m0s
	// alice <nil>
	// {"message":"jwt expired","name":"AuthTokenExpiredError","expiry":"2026-11-22T02:47:32.000Z","isBadToken":true}
	// AuthTokenInvalidError: jwt malformed true
}

func ExampleJWT_Sign_keyPair() {
	// Key pairs need an explicit algorithm; the default HS256 cannot sign
	// with them, exactly as on the reference server.
	privPEM, pubPEM := keys().ec256Priv, keys().ec256Pub
	j, err := auth.New(auth.Options{PrivateKeyPEM: privPEM, PublicKeyPEM: pubPEM})
	if err != nil {
		panic(err)
	}
	_, _, err = j.Sign(context.Background(), map[string]any{"username": "alice"}, nil)
	fmt.Println(err)

	j, err = auth.New(auth.Options{PrivateKeyPEM: privPEM, PublicKeyPEM: pubPEM, Algorithm: "ES256"})
	if err != nil {
		panic(err)
	}
	token, _, err := j.Sign(context.Background(), map[string]any{"username": "alice"}, &auth.SignOptions{ExpiresIn: time.Hour})
	fmt.Println(err)
	claims, err := j.Verify(context.Background(), token, time.Now())
	fmt.Println(claims["username"], err, j.VerifyAlgorithms())
	// Output:
	// secretOrPrivateKey must be a symmetric key when using HS256
	// <nil>
	// alice <nil> [ES256]
}
