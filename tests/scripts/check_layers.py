#!/usr/bin/python3
"""Dependencies point down (docs/architecture.md): each folder may include only the IoN headers
of its own layer or the layers below it. Fails, naming the file and line, on an upward include.

  check_layers.py SOURCE_DIR
"""
import pathlib
import re
import sys

# folder -> the header folders (ion/X/...) it may include. Lower layers first.
CORE = {"core", "v1"}
ALLOWED = {
    "core": CORE,
    "broker": CORE | {"broker"},
    "drivers/mea": CORE | {"mea"},
    "drivers/chip": CORE | {"chip"},
    "drivers/synapse": CORE | {"synapse"},
    "drivers/replay": CORE | {"replay"},
    "drivers/builtin": CORE | {"builtin"},
    "drivers/chemical": CORE | {"chemical"},
    # The registry builds any driver a node config names.
    "drivers/registry": CORE | {"drivers", "builtin", "mea", "chip", "synapse", "replay", "chemical"},
    "nodes": CORE | {"node", "drivers"},
    "capi": CORE | {"node", "drivers", "capi"},
    "include": CORE,
    "tools/interchange": CORE | {"interchange"},
    "tools/linkem": CORE | {"linkem"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"ion/([a-z0-9_]+)/')


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    bad = []
    checked = 0
    for folder, allowed in ALLOWED.items():
        base = root / folder
        if not base.is_dir():
            bad.append(f"{folder}: missing (update tests/scripts/check_layers.py)")
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in (".h", ".cpp", ".hpp", ".cc"):
                continue
            checked += 1
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if m and m.group(1) not in allowed:
                    bad.append(f"{path.relative_to(root)}:{n}: includes ion/{m.group(1)}/, "
                               f"above the layer of {folder}/ (it may include: {', '.join(sorted(allowed))})")
    for b in bad:
        print(b)
    print(f"{checked} files checked, {len(bad)} upward includes")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
