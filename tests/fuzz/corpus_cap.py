#!/usr/bin/env python3
"""corpus_cap.py — picks the inputs kept in tests/fuzz/corpus/TARGET/ after a
fuzz run, from the control file of a libFuzzer merge (-merge_control_file):
seed-* and crash-* inputs of the kept corpus always stay; the other places go
to the inputs that added the most coverage features, up to --max files in all.
The kept directory is then made to hold exactly those inputs.

Usage: corpus_cap.py [--max N] CONTROL_FILE KEPT_DIR
"""
import argparse
import os
import shutil
import sys


def read_control(path):
    """[(input path, number of features it added)] in the merge's order."""
    with open(path) as f:
        lines = f.read().splitlines()
    n = int(lines[0])
    paths = lines[2:2 + n]
    added = [0] * n
    for line in lines[2 + n:]:
        words = line.split()
        if len(words) >= 2 and words[0] == "FT":
            added[int(words[1])] = len(words) - 2
    return list(zip(paths, added))


def pinned(path):
    name = os.path.basename(path)
    return name.startswith("seed-") or name.startswith("crash-")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=50)
    ap.add_argument("control")
    ap.add_argument("kept")
    args = ap.parse_args()

    inputs = read_control(args.control)
    chosen = [p for p, _ in inputs if pinned(p)]
    others = sorted(((added, -os.path.getsize(p), p) for p, added in inputs
                     if not pinned(p) and added > 0), reverse=True)
    for _, _, p in others:
        if len(chosen) >= args.max:
            break
        chosen.append(p)

    names = {os.path.basename(p): p for p in chosen}
    for name in os.listdir(args.kept):
        if name not in names:
            os.remove(os.path.join(args.kept, name))
    for name, p in names.items():
        dest = os.path.join(args.kept, name)
        if not os.path.exists(dest):
            shutil.copyfile(p, dest)
    print("fuzz: %s: kept %d inputs (%d pinned) of %d merged" %
          (args.kept, len(names), sum(pinned(p) for p in chosen), len(inputs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
