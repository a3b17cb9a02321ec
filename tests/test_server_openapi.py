"""The committed API schema is the app's, and building the app stays light."""
import json
import subprocess
import sys
from pathlib import Path

from latentween.server import openapi_schema

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_the_committed_openapi_schema_matches_the_app():
    # regenerate with: latentween serve --print-openapi > docs/openapi.json
    assert json.loads(SCHEMA.read_text()) == openapi_schema()


def test_building_the_app_and_its_schema_loads_no_torch():
    code = "import sys; from latentween.server import openapi_schema; openapi_schema(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
