module github.com/socketcluster-go/socketcluster

go 1.26.0

require (
	github.com/gobwas/httphead v0.1.0 // Sec-WebSocket-Extensions parsing (permessage-deflate negotiation); already gobwas/ws's own header parser
	github.com/gobwas/ws v1.5.0 // WebSocket engine: frame-level control (pre-encoded frames, writev, event-driven reads)
	github.com/golang-jwt/jwt/v5 v5.3.1 // JWT sign/verify for the auth package
	github.com/nats-io/nats.go v1.55.0 // official NATS client (broker/natsbroker)
	github.com/prometheus/client_golang v1.25.0 // metrics of cmd/scserver (prommetrics)
	github.com/redis/rueidis v1.0.79 // Redis client of broker/redisbroker (auto-pipelining; see its doc)
	github.com/vmihailenco/msgpack/v5 v5.4.1 // independent MessagePack reader in codec/minbin tests
	go.uber.org/goleak v1.3.0 // goroutine-leak checks in tests
	golang.org/x/sys v0.48.0 // epoll for event-driven reads (internal/netpoll)
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
