#!/usr/bin/python3
"""No dangling references: every repository path the docs and the README quote in backticks
(`dir/file.ext`) exists. Fails, naming the document, line and path.

  check_doc_paths.py SOURCE_DIR
"""
import pathlib
import re
import sys

# A quoted path with a folder and a file extension, e.g. `nodes/src/session.cpp`.
PATH = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\.(?:h|cpp|py|md|yaml|proto|sh|txt|js|html|json|cmake))`")
# Paths that name something outside the repository, made at build or run time: absolute and
# relative-up paths, the build tree, demo output, the generated protobuf header, and the 2017
# hub's published code (arc-instruments/arc1_pyqt).
OUTSIDE = ("/", "~", "build/", "ion-demo-", "../", "ion/v1/", "ProgPanels/")


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    docs = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    bad = []
    quoted = 0
    for doc in docs:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for path in PATH.findall(line):
                if path.startswith(OUTSIDE):
                    continue
                quoted += 1
                if not (root / path).exists():
                    bad.append(f"{doc.relative_to(root)}:{number}: `{path}` does not exist")
    for b in bad:
        print(b)
    print(f"{quoted} quoted paths in {len(docs)} documents, {len(bad)} dangling")
    return 1 if bad or quoted == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
