"""Where the providers' OpenAPI files live: `../shared/specs` beside the checkout (as on a
developer's machine and in CI's fresh clone), or SAFESNAP_SPECS_DIR when set."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = Path(os.environ.get("SAFESNAP_SPECS_DIR") or REPO_ROOT.parent / "shared" / "specs")
