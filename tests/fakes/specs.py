"""Where the providers' OpenAPI files live: `tests/specs/` in this repository, so the tests run
from a plain clone. They are byte-for-byte copies of the project's shared specs (README there
names each file's upstream source and commit); to update, copy the new files over and run the
fakes' tests. SAFESNAP_SPECS_DIR points the fakes at another copy, e.g. to try a newer spec."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = Path(os.environ.get("SAFESNAP_SPECS_DIR") or REPO_ROOT / "tests" / "specs")
