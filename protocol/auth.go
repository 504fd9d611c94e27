package protocol

// AuthToken is the decoded payload of a socket's JWT.
type AuthToken = map[string]any

// AuthState is "authenticated" or "unauthenticated".
type AuthState string

// Authentication states.
const (
	Authenticated   AuthState = "authenticated"
	Unauthenticated AuthState = "unauthenticated"
)
