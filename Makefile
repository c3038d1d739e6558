# helexa — build, test, lint, run.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GO      ?= go

.PHONY: build test test-full test-race test-portable lint run ci ptx gpucheck bench clean

## build: static binary at ./helexa (CGO_ENABLED=0, version stamped, the demo model embedded)
build: demo-model
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o helexa .

.PHONY: demo-model packages packages-check contrib-check

# The demo model the binary embeds (internal/demo/data, not committed):
# stories260K when DEMO_SOURCE exists, else a tiny synthetic model with
# the built-in byte-level vocabulary (same shape as internal/tools' test).
DEMO_MODEL  := internal/demo/data/demo.gguf
DEMO_SOURCE ?= ../shared/models/stories260K.gguf

## demo-model: write the embedded demo model when it is missing (stories260K from DEMO_SOURCE, else a synthetic one)
demo-model:
	@if [ -s $(DEMO_MODEL) ]; then :; \
	elif [ -f '$(DEMO_SOURCE)' ]; then cp '$(DEMO_SOURCE)' $(DEMO_MODEL).tmp && mv $(DEMO_MODEL).tmp $(DEMO_MODEL) && echo "demo model: $(DEMO_SOURCE)"; \
	else CGO_ENABLED=0 $(GO) run . tools synth --dim 64 --layers 2 --heads 4 --ffn 172 --ctx 512 --seed 1 \
		--name helexa-demo --type F32 --out $(DEMO_MODEL).tmp && mv $(DEMO_MODEL).tmp $(DEMO_MODEL); fi

# The packages with pure-Go twins of their assembly kernels (the purego
# tag, and every GOARCH but amd64, builds those instead).
KERNEL_PKGS := ./node/ggml/ ./node/cpu/

## test: every check at full size, then the whole suite under the race detector, then the portable kernels and the arm64 build
test: test-full test-race test-portable

## test-full: the whole suite without the race detector; the checks that shrink or skip under -race run in full here
test-full: demo-model
	$(GO) test -count=1 -timeout 25m ./...

## test-race: the whole suite with the race detector (some heavy checks shrink; test-full runs them in full)
test-race:
	$(GO) test -race -count=1 -timeout 25m ./...

## test-portable: the kernel packages' pure-Go kernels (-tags purego), and the arm64 build and vet
test-portable:
	$(GO) test -tags purego -count=1 -timeout 15m $(KERNEL_PKGS)
	$(GO) vet -tags purego $(KERNEL_PKGS)
	GOARCH=arm64 $(GO) build ./...
	GOARCH=arm64 $(GO) vet ./...

## lint: gofmt, go mod tidy, go vet and staticcheck
lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l . | grep -v '^testdata/' || true); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Packages: version from the newest v* tag (v1.2.3 → 1.2.3), else
# 0.0.0.git<commit>; both deb and rpm accept either.
PKG_ARCHS   ?= amd64 arm64
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/./g'); echo $${v:-0.0.0.git$$(git rev-parse --short HEAD 2>/dev/null || echo 0)})

## packages: .deb and .rpm for amd64 and arm64 in dist/ (nfpm, pinned in go.mod as a tool; packaging/)
packages: demo-model
	@mkdir -p dist/stage
	@rm -f dist/helexa_*.deb dist/helexa-*.rpm
	@set -e; for arch in $(PKG_ARCHS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/stage/helexa . ; \
		for fmt in deb rpm; do \
			HELEXA_ARCH=$$arch VERSION=$(PKG_VERSION) \
				$(GO) tool nfpm package --config packaging/nfpm.yaml --packager $$fmt --target dist/ ; \
		done; \
	done
	@rm -rf dist/stage
	@ls -l dist/*.deb dist/*.rpm

## packages-check: make packages, then the units (systemd-analyze verify), the file lists (dpkg-deb -c, rpm -qlp), and the .deb installed (root or sudo; else unpacked) running `helexa version`
packages-check: packages
	HELEXA_DIST=$(CURDIR)/dist $(GO) test -count=1 -v -run 'TestUnits|TestPackage' ./packaging/
	sh packaging/install-check.sh dist/helexa_*_$$($(GO) env GOARCH).deb

## contrib-check: promtool check rules on contrib/prometheus/alerts.yml, and the dashboard's and rules' metric names against what the binary exports
contrib-check:
	promtool check rules contrib/prometheus/alerts.yml
	$(GO) test -count=1 ./contrib/

## run: build and serve --role=all with the defaults
run: build
	./helexa --role=all

## ci: what CI runs: .ci/run (a C++ compiler for the CUDA kernel emulator, lint, test)
ci:
	bash .ci/run

clean:
	rm -f helexa $(DEMO_MODEL)
	rm -rf dist

## ptx: regenerate cuda/kernels/*.ptx from the CUDA C sources (needs clang with the NVPTX target; no CUDA toolkit)
ptx:
	sh cuda/kernels/build.sh

## gpucheck: on a GPU host, build and run every kernel and backend check against the CPU engine, reference parity and the decode/prefill bench
## (on a machine without a GPU, `sh cuda/gpucheck.sh prep` packs binary and small models into .gpucheck/ to carry)
gpucheck: build
	HELEXA=./helexa sh cuda/gpucheck.sh
