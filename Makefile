# posd / poscli — see README.md.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test bench lint devnet fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/posd ./cmd/poscli

# The README's test command: vet, staticcheck (pinned), then every test
# with the race detector.
test:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -timeout 30m ./...

# Benchmarks; figures go to docs/PERFORMANCE.md with the command that made them.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Each fuzz target (every func FuzzX in a _test.go file) for FUZZTIME:
# make fuzz FUZZTIME=5m for longer. CI runs it with FUZZTIME=3s. A crash is
# written to the package's testdata/fuzz/FuzzX/ and from then on replayed
# by go test as a regression case: commit it with the fix. .ci/fuzz.sh
# says how it tells a finding from Go 1.26's fuzz-deadline race.
FUZZTIME ?= 20s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash .ci/fuzz.sh

# A local network of three nodes in one process.
devnet: build
	$(BIN)/posd devnet --nodes 3

clean:
	rm -rf $(BIN)
