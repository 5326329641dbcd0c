# Surge: build, run and test. `make help` lists the targets.

GO              ?= go
MYSQL_DSN       ?= root@tcp(127.0.0.1:3306)/
STATICCHECK     ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO   := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
PROTOS          := account social message
TOOLS           := $(CURDIR)/bin/tools
FUZZTIME        ?= 20s

.PHONY: help build up test test-race test-integration bench fuzz lint proto proto-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/surge
	$(GO) build -o bin/surge ./cmd/surge

up: build ## run every role in one process on embedded defaults
	./bin/surge up

# -count=1: the end-to-end tests build and run the surge binary, which Go's
# test cache does not see, so a cached pass could hide a change.
test: ## every test that needs nothing but Go (MySQL tests skip)
	$(GO) test -count=1 ./...

test-race: ## the same under the race detector
	$(GO) test -count=1 -race ./...

test-integration: ## store, sqldb and service tests on both backends, and the end-to-end MySQL test, against MariaDB/MySQL at MYSQL_DSN
	SURGE_TEST_MYSQL_DSN='$(MYSQL_DSN)' $(GO) test -count=1 ./internal/... ./services/...
	SURGE_TEST_MYSQL_DSN='$(MYSQL_DSN)' $(GO) test -count=1 -run 'MySQL' ./test/e2e/

bench: ## every benchmark, with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## a short run of every fuzz target
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./edge/internal/ws/
	$(GO) test -run '^$$' -fuzz '^FuzzParseUpgrade$$' -fuzztime $(FUZZTIME) ./edge/internal/ws/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./internal/wire/

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

proto: ## regenerate the gRPC code beside each services/<name>/<name>.proto (needs protoc)
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GRPC)
	@for p in $(PROTOS); do \
	  mkdir -p services/$$p/$${p}pb; \
	  PATH=$(TOOLS):$$PATH protoc -I services/$$p \
	    --go_out=services/$$p/$${p}pb --go_opt=paths=source_relative \
	    --go-grpc_out=services/$$p/$${p}pb --go-grpc_opt=paths=source_relative \
	    services/$$p/$$p.proto || exit 1; \
	done

proto-check: proto ## fail when the committed generated code differs from what make proto writes
	@git diff --exit-code -- 'services/*/*pb/*.go' || { echo "generated code is stale: run make proto"; exit 1; }
