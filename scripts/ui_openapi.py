"""Print the embedded app's OpenAPI document (gateway and auth routes): the UI client is made from it."""

import json
import sys
import tempfile
from pathlib import Path

from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


def openapi_document() -> dict[str, object]:
    """The OpenAPI document of the app `lockflow up` serves (built on throwaway settings, never started)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(embedded_settings(Path(folder), start_workers=False))
        return app.openapi()


if __name__ == "__main__":
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
