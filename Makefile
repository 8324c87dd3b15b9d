# Thin wrapper over CMake: the two commands a user needs are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build/asan
JOBS       ?= $(shell nproc)
MAKEFLAGS  += --no-print-directory

.PHONY: all deps build run test test-fast asan clean install uninstall

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/syn up

# Unit and integration tests, the same tests again under ASan+UBSan, then every
# fuzz target for FUZZ_SHORT_SECONDS; the sanitized and fuzz trees are built while
# the first tests run (scripts/test-all.sh says why).
test: build
	@sh scripts/test-all.sh $(BUILD) $(ASAN_BUILD) "$(JOBS)" "$(MAKE) test-trees" \
		"sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SHORT_SECONDS)"

# The trees `make test` builds besides the plain one.
.PHONY: test-trees asan-tree fuzz-tree
test-trees: asan-tree fuzz-tree
asan-tree:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSYN_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Only the plain build's tests, for a quick edit-test loop.
test-fast: build
	@sh scripts/test.sh $(BUILD) "$(JOBS)"

clean:
	rm -rf $(BUILD)

# The four programs, the man page and the bash completion, under PREFIX (DESTDIR
# for packaging). syn up finds the other programs next to itself, so they go to
# one directory.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
BASHDIR ?= $(PREFIX)/share/bash-completion/completions
PROGRAMS = syn syn-broker syn-gateway syn-worker

install: build
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)" "$(DESTDIR)$(BASHDIR)"
	for p in $(PROGRAMS); do install -m 0755 "$(BUILD)/bin/$$p" "$(DESTDIR)$(BINDIR)/$$p"; done
	install -m 0644 docs/syn.1 "$(DESTDIR)$(MANDIR)/syn.1"
	install -m 0644 scripts/syn.bash-completion "$(DESTDIR)$(BASHDIR)/syn"

uninstall:
	for p in $(PROGRAMS); do rm -f "$(DESTDIR)$(BINDIR)/$$p"; done
	rm -f "$(DESTDIR)$(MANDIR)/syn.1" "$(DESTDIR)$(BASHDIR)/syn"

# The compose stack built and run as a user would, with Debian's docker.io (issue 21,
# scripts/compose-test.sh): first workflow, scale to 4 workers, a broker kill with 50
# executions in flight, data kept. Needs a Docker engine; minutes, so not in `make test`.
.PHONY: compose-test
compose-test: build
	@sh scripts/compose-test.sh

# Coverage-guided fuzzing (issue 20, docs/reliability.md "Fuzzing"): the decoders
# of bytes from outside, built with clang's libFuzzer under ASan+UBSan in their own
# build dir, each run for FUZZ_SECONDS from the seeds in tests/fuzz/corpus/. Fails
# when a target finds a crash, a leak or a broken check (the input is kept in
# $(FUZZ_BUILD)/artifacts/). FUZZ_TARGETS="msg yaml" runs only those.
FUZZ_BUILD         ?= build/fuzz
FUZZ_CC            ?= clang-14
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 4
FUZZ_TARGETS       ?=
.PHONY: fuzz
fuzz-tree: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_BUILD_TYPE=Debug \
		-DSYN_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
fuzz: fuzz-tree
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Benchmarks (issue 7, docs/benchmarks.md): synload's workloads on fresh local
# stacks -> bench/results/ (JSON, report.md, PNG charts). bench-peers runs the
# project's own Celery and BullMQ versions of the same workloads (bench/peers/,
# from a copy in $(BUILD)/peers) on a redis-server of their own -> bench/results/peers/.
.PHONY: bench bench-peers
bench: build
	@sh bench/run.sh $(BUILD)

# W1 on SQLite and on PostgreSQL (a private durable cluster synload makes) beside
# BullMQ and Celery, alternated round by round -> bench/results/w1/summary.md.
.PHONY: bench-w1
bench-w1: build
	@sh bench/w1.sh $(BUILD)

bench-peers:
	@sh bench/peers.sh $(BUILD)/peers $(CURDIR)/bench/results

# Query times over an archive of 1,000,000 finished executions (issue 4): ~1 min,
# ~1.3 GB in a temp dir that is removed afterwards.
# A/B of two commits, alternated in one run (~11 min): W1, W2 and idle memory of
# BASE against HEAD (default: this checkout) -> bench/results/ab/summary.md.
.PHONY: bench-ab
bench-ab:
	@test -n "$(BASE)" || { echo "usage: make bench-ab BASE=<rev> [HEAD=<rev>]" >&2; exit 2; }
	@sh bench/ab.sh $(BASE) $(HEAD)

# Retention (issue 18): 200,000 executions under a 1-minute retention; the
# database file size over time -> bench/results/retention/ (N=... for fewer).
.PHONY: bench-retention
bench-retention: build
	@SYN_BIN_DIR=$(BUILD)/bin sh -c 'bash bench/retention.sh $(N)'

# A thousand workers (issue 24): the fleet workload at 10..1,000 simulated workers
# -> bench/results/fleet/ (JSON, .dat of medians, fleet.png); RUNS=3 runs each, ~25 min.
.PHONY: bench-fleet
bench-fleet: build
	@SYN_BIN_DIR=$(BUILD)/bin bash bench/fleet.sh $(N)

# W2 with the workers' defaults (issue 24): 16 and 64 slots, 640 executions, beside
# --prefetch 0 and the peers in the same run -> bench/results/w2defaults/summary.md.
# W2 with long phases on 4 workers (30 s; PHASE_MS=8000 for a shorter run) ->
# bench/results/w2spread/summary.md: executions per worker and the makespan.
.PHONY: bench-w2-defaults bench-w2-spread
bench-w2-defaults: build
	@sh bench/w2_defaults.sh $(BUILD)
bench-w2-spread: build
	@sh bench/w2_spread.sh $(BUILD) $(PHASE_MS)

.PHONY: bench-archive
bench-archive: build
	$(BUILD)/bin/archive_query

# The broker's memory over 1,000,000 finished executions (issue 24): archive_query's
# archive, then a real broker and gateway on it -> bench/results/archive-memory/.
.PHONY: bench-archive-memory
bench-archive-memory: build
	@sh bench/archive_memory.sh $(BUILD) $(N)
