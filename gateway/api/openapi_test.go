package api

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI file describes exactly the methods the handler serves.
func TestOpenAPIMatchesMethods(t *testing.T) {
	t.Parallel()
	paths := regexp.MustCompile(`(?m)^  /api/(\w+):$`).FindAllStringSubmatch(string(OpenAPI), -1)
	var got []string
	for _, m := range paths {
		got = append(got, m[1])
	}
	want := append([]string(nil), Methods...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("openapi.yaml paths %v, handler methods %v", got, want)
	}
	ops := regexp.MustCompile(`(?m)^      operationId: (\w+)$`).FindAllStringSubmatch(string(OpenAPI), -1)
	if len(ops) != len(Methods) {
		t.Fatalf("%d operationIds for %d methods", len(ops), len(Methods))
	}
}
