# fieldsync — the front door. `make run` serves the demo; `make test` is CI.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/fieldsync/fieldsync/server.Version=$(VERSION)
DATA     ?= data
ADDR     ?= 127.0.0.1:8080
FUZZTIME ?= 10s

.PHONY: all build run seed test test-short bench bench-go bench-load bench-scale fuzz lint clean

all: lint test build

## build: the binary at bin/fieldsync
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fieldsync ./server/cmd/fieldsync

## run: build, seed the demo data into ./data (idempotent), serve on 127.0.0.1:8080
run: build
	./bin/fieldsync seed --data $(DATA)
	./bin/fieldsync serve --addr $(ADDR) --data $(DATA)

## seed: load the demo data set into ./data
seed: build
	./bin/fieldsync seed --data $(DATA)

## test: the whole suite, with the race detector
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: the suite without the race detector and without the slow end-to-end runs
test-short:
	$(GO) test -count=1 -short ./...

## bench: the Go benchmarks of the hot paths, then the load generator on 10,000 households
bench: bench-go bench-load

## bench-go: the Go benchmarks (decode, merge, push transaction, HTTP push, pull page, snapshot, checksum)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

## bench-load: fieldsync bench, 100 tablets × 10 sets × 50 changes on 10,000 households (generated once into .bench/)
bench-load: build
	./bin/fieldsync bench --data .bench/10k --households 10000 --tablets 100 --sets 10 --changes 50 --json .bench/10k.json

## bench-scale: the growth curve: the same at 100,000 and 1,000,000 households (generating 1M takes ~17 min once)
bench-scale: build
	./bin/fieldsync bench --data .bench/100k --households 100000 --tablets 100 --sets 10 --changes 50 --json .bench/100k.json
	./bin/fieldsync bench --data .bench/1m --households 1000000 --tablets 100 --sets 10 --changes 50 --json .bench/1m.json

## fuzz: each fuzz target for FUZZTIME (CI runs them for 5 s each)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChangeset$$' -fuzztime $(FUZZTIME) ./syncproto
	$(GO) test -run '^$$' -fuzz '^FuzzMerge$$' -fuzztime $(FUZZTIME) ./syncproto
	$(GO) test -run '^$$' -fuzz '^FuzzParseCursor$$' -fuzztime $(FUZZTIME) ./syncproto
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./server/auth
	$(GO) test -run '^$$' -fuzz '^FuzzSupervisorQueries$$' -fuzztime $(FUZZTIME) -parallel 1 ./server

## lint: go vet and a gofmt check
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
