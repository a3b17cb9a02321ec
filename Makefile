# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch comes first and pinned: on the development machines these wheels are served from local disk,
# and anything asking for a newer torch would download gigabytes. Override on your own machine,
# e.g. `make TORCH_SPEC="torch torchvision" demo`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# Blender as a Python module (the bpy wheel) runs the extension's tests headless. It needs Python 3.11
# and a venv of its own; 4.4 is tested beside 5.0 because the VSE API was renamed between them.
PYTHON311 ?= python3.11
BPY := .venv-blender/.installed
BPY44 := .venv-blender-4.4/.installed
# 4.2 LTS: 4.2.0 does not import on Debian 12 (libtbb.so.2); 4.2.23's wheel carries its own.
BPY42 := .venv-blender-4.2/.installed

.PHONY: demo test venv clean plugin ofx bench

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

$(BPY): BPY_SPEC = bpy==5.0.1
$(BPY44): BPY_SPEC = bpy==4.4.0
$(BPY42): BPY_SPEC = bpy==4.2.23
$(BPY) $(BPY44) $(BPY42):
	test -x $(@D)/bin/python || $(PYTHON311) -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q $(BPY_SPEC)
	touch $@

# The extension zip, written with Python's zipfile: no Blender or bpy wheel needed.
plugin:
	$(PYTHON) scripts/build_plugin.py --out dist

# The OpenFX plug-in (ofx_bridge/README.md): needs cmake, a C++17 compiler, libcurl and libpng.
ofx:
	cmake -S ofx_bridge -B build/ofx -DCMAKE_BUILD_TYPE=Release
	cmake --build build/ofx -j
	rm -rf dist/Latentween.ofx.bundle
	cmake --install build/ofx --prefix dist

demo: $(STAMP)
	$(PY) -m latentween.demo --out out/demo

test: $(STAMP) $(BPY) $(BPY44) $(BPY42)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/engine_speed.py

clean:
	rm -rf out dist build
