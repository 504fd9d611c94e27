// Module redislib holds only the go-redis/rueidis publish benchmark behind
// broker/redisbroker's choice of client (see redislib_test.go), so that
// go-redis is not required by the socketcluster module.
module github.com/socketcluster-go/socketcluster/bench/redislib

go 1.26.0

require (
	github.com/redis/go-redis/v9 v9.23.0 // the library compared
	github.com/redis/rueidis v1.0.79 // the library chosen (same version as the main module)
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
