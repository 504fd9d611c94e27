package proxy_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind. With
// PROXY_TEST_BACKEND=1 the binary is the misbehaving backend process of
// TestConnectRefusedOrFailed instead.
func TestMain(m *testing.M) {
	if os.Getenv("PROXY_TEST_BACKEND") == "1" {
		serveMisbehaviours()
		return
	}
	goleak.VerifyTestMain(m)
}
