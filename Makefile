# res2net build, test and comparison targets. `make help` lists them.

GO         ?= go
PYTHON     ?= /usr/bin/python3
PARITY_DIR ?= /tmp/res2net-parity
BIN        ?= bin/res2net
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: help build test parity lint fixtures examples bench bench-compare startup-compare serve-load deps fixture-deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build a static binary at bin/res2net
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/res2net

test: ## run all tests with the race detector (the README's test command)
	$(GO) test -race ./...

parity: ## full-size PyTorch parity: generate seeded checkpoints (Holocron, the nine timm variants) and logits, compare
	$(PYTHON) scripts/make_parity.py $(PARITY_DIR)
	$(PYTHON) scripts/make_timm_fixtures.py --full $(PARITY_DIR)/timm
	$(PYTHON) scripts/make_beyond_fixtures.py --full $(PARITY_DIR)
	RES2NET_PARITY_DIR=$(PARITY_DIR) $(GO) test -count=1 -run Parity -v ./pkg/model/ ./cmd/res2net/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fixtures: ## regenerate every committed PyTorch/Pillow fixture (needs `make deps fixture-deps`)
	$(PYTHON) scripts/make_fixtures.py
	$(PYTHON) scripts/make_weights_fixtures.py
	$(PYTHON) scripts/make_timm_fixtures.py
	$(PYTHON) scripts/make_preprocess_fixtures.py
	$(PYTHON) scripts/make_beyond_fixtures.py
	$(PYTHON) scripts/make_turbo.py

examples: build ## the README's explain pictures (docs/) and train-head output, from shipped photos
	$(PYTHON) scripts/make_beyond_examples.py --bin $(BIN)

bench: ## Go benchmarks of the GEMM, the ops and the whole model
	$(GO) test -run '^$$' -bench . -benchtime 2x ./pkg/ops/... ./pkg/model/

bench-compare: build ## res2net vs PyTorch vs ONNX Runtime, side by side in one run (needs node and npm; see README)
	$(PYTHON) scripts/make_parity.py $(PARITY_DIR)
	$(PYTHON) scripts/bench_compare.py --bin $(BIN) --weights $(PARITY_DIR)/full.pth

startup-compare: build ## predict's start-up and folder throughput against PyTorch and bench, side by side (README figures)
	$(PYTHON) scripts/make_parity.py $(PARITY_DIR)
	$(PYTHON) scripts/startup_compare.py --bin $(BIN) --weights $(PARITY_DIR)/full.pth

serve-load: ## res2net serve under 1, 8 and 32 clients on the full-size checkpoint (README figures)
	$(PYTHON) scripts/make_parity.py $(PARITY_DIR)
	RES2NET_SERVE_WEIGHTS=$(PARITY_DIR)/full.pth RES2NET_SERVE_SECONDS=10 $(GO) test -count=1 -run 'TestLoad$$' -v ./pkg/server/

deps: ## install the Debian packages the parity checks need (as root)
	apt-get update
	apt-get install -y --no-install-recommends python3-torch python3-torchvision python3-pil libopenblas0-pthread python3-numpy

fixture-deps: ## also what regenerating the fixtures needs: source photos and libjpeg-turbo's cjpeg (as root)
	apt-get install -y --no-install-recommends python3-skimage libjpeg-turbo-progs python3-matplotlib
