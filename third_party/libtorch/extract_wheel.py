"""Extracts members of a wheel (a zip file) under new names: the one job Bazel's extract can't do.

Usage: python3 extract_wheel.py WHEEL DEST PREFIX=NEWPREFIX [PREFIX=NEWPREFIX ...] [--exclude NAME ...]
Every member whose name starts with PREFIX is written to DEST/NEWPREFIX<rest>; file modes kept.
"""
import os
import sys
import zipfile


def main(argv):
    wheel, dest, rest = argv[1], argv[2], argv[3:]
    excluded = set()
    mapping = []
    while rest:
        item = rest.pop(0)
        if item == "--exclude":
            excluded.add(rest.pop(0))
        else:
            prefix, _, new_prefix = item.partition("=")
            mapping.append((prefix, new_prefix))
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or os.path.basename(info.filename) in excluded:
                continue
            for prefix, new_prefix in mapping:
                if not info.filename.startswith(prefix):
                    continue
                target = os.path.join(dest, new_prefix + info.filename[len(prefix):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    while True:
                        chunk = src.read(1 << 22)
                        if not chunk:
                            break
                        out.write(chunk)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(target, mode or 0o644)
                count += 1
                break
    if count == 0:
        sys.exit("extract_wheel: nothing in %s matched %s" % (wheel, mapping))
    print("extract_wheel: %d files from %s" % (count, os.path.basename(wheel)))


if __name__ == "__main__":
    main(sys.argv)
