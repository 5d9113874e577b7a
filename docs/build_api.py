"""Build the HTML API reference from the docstrings with pdoc; any warning fails the build.

    pip install -e '.[docs]'        # pdoc
    python docs/build_api.py        # -> docs/api/index.html (or give another directory)

Documents the public modules: ``loguru_vlogs`` (``VLogsSink``) and ``loguru_vlogs.testing``
(the test receiver and client, a stable API for users' tests).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("loguru_vlogs", "loguru_vlogs.testing")


def build(output: Path) -> list[Path]:
    """Render the reference into ``output``; returns the HTML files written."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # build the checkout's code, not an installed copy
    import pdoc
    import pdoc.render

    from loguru_vlogs import __version__

    pdoc.render.configure(
        docformat="restructuredtext",
        footer_text=f"loguru-vlogs {__version__}",
        show_source=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a docstring pdoc cannot render fails the build
        pdoc.pdoc(*MODULES, output_directory=output)
    return sorted(output.rglob("*.html"))


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "api"
    pages = build(output)
    print(f"wrote {len(pages)} pages to {output} (open {output / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
