# Thin wrapper: set-up (Debian packages), configure, build, then demo or test.
# Everything real lives in CMakeLists.txt.
BUILD ?= build
JOBS  ?= $(shell nproc)
DEBS  := cmake pkg-config gcc g++ libhdf5-dev libzstd-dev libopenblas-dev libopenmpi-dev \
         openmpi-bin libyaml-dev libcjson-dev libcmocka-dev python3

.PHONY: all deps cudnn-frontend configure build demo test clean

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

# The header-only cuDNN frontend for the optional cuDNN attention
# (kernels/cuda/attention_cudnn.cu), from its PyPI wheel, pinned by hash; fetched only
# where nvcc exists. Without PyPI that one attention choice is compiled out.
CUDNN_FE_VERSION := 1.32.0
CUDNN_FE_WHEEL   := nvidia_cudnn_frontend-$(CUDNN_FE_VERSION)-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
CUDNN_FE_SHA256  := c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0
CUDNN_FE_DIR     := $(BUILD)/deps/cudnn_frontend

cudnn-frontend:
	@d=$(CUDNN_FE_DIR); [ -e $$d/include/cudnn_frontend.h ] && exit 0; \
	command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || exit 0; \
	mkdir -p $$d && \
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
	  --implementation cp --platform manylinux_2_28_x86_64 -d $$d \
	  nvidia-cudnn-frontend==$(CUDNN_FE_VERSION) >/dev/null 2>&1 && \
	echo "$(CUDNN_FE_SHA256)  $$d/$(CUDNN_FE_WHEEL)" | sha256sum -c --quiet - && \
	python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("include/")])' \
	  $$d/$(CUDNN_FE_WHEEL) $$d && rm -f $$d/*.whl && \
	echo "ehrtune: cuDNN frontend $(CUDNN_FE_VERSION) headers in $$d/include" || \
	{ rm -rf $$d; echo "ehrtune: cuDNN frontend not fetched (PyPI unreachable?): the cuDNN attention choice is compiled out"; }

configure: deps cudnn-frontend
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/ehrtune demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
