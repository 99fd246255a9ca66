# Thin wrapper: set-up (Debian packages), configure, build, then demo or test.
# Everything real lives in CMakeLists.txt.
BUILD ?= build
JOBS  ?= $(shell nproc)
DEBS  := cmake pkg-config gcc g++ libhdf5-dev libzstd-dev libopenblas-dev libopenmpi-dev \
         openmpi-bin libyaml-dev libcjson-dev libcmocka-dev python3

.PHONY: all deps configure build demo test clean

all: build

# Installs what is missing when run as root; otherwise prints the one line to run.
deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	   grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "ehrtune: installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "ehrtune: missing Debian packages; run:"; \
	    echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/ehrtune demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
