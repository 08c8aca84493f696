#!/usr/bin/env python3
"""Builds the file lists for the similarity calibration (docs/detection.md).

    make_lists.py CORPUS_DIR OUT_DIR [NEGATIVE_ROOT...]

CORPUS_DIR is what debian-releases.sh unpacked: CORPUS_DIR/<release>/<package>/...
Writes into OUT_DIR:
  tools.list      every regular ELF file of the corpus (the reference side, and
                  the positive queries: the same file from another release)
  negatives.list  every regular ELF file under the NEGATIVE_ROOTs (default
                  /usr/bin /usr/sbin /usr/lib), one path per distinct content:
                  hard links and byte-identical copies are listed once, so a
                  library shipped twice does not count twice; files whose bytes
                  equal a tool file are left out (they are not unrelated).
Only ELF files count: the tools' docs, man pages and word lists are not what
a scan would flag, and symbolic links are not files of their own.
"""
import hashlib
import os
import stat
import sys

ELF_MAGIC = b"\x7fELF"


def elf_files(root):
    """Regular ELF files under root, sorted, with their (dev, inode)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    continue
                with open(path, "rb") as f:
                    if f.read(4) != ELF_MAGIC:
                        continue
            except OSError as e:
                # Unreadable entries are reported, not silently dropped.
                print(f"make_lists: skipping {path}: {e}", file=sys.stderr)
                continue
            out.append((path, (st.st_dev, st.st_ino)))
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    corpus, out_dir = argv[1], argv[2]
    roots = argv[3:] or ["/usr/bin", "/usr/sbin", "/usr/lib"]
    if not os.path.isdir(corpus):
        print(f"make_lists: corpus directory {corpus} does not exist", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)

    tools = [p for p, _ in elf_files(corpus)]
    if not tools:
        print(f"make_lists: no ELF files under {corpus}", file=sys.stderr)
        return 1
    tool_hashes = {sha256(p) for p in tools}

    seen_inodes = set()
    seen_hashes = set()
    negatives = []
    dup = same_as_tool = 0
    for root in roots:
        for path, inode in elf_files(root):
            if inode in seen_inodes:
                dup += 1
                continue
            seen_inodes.add(inode)
            digest = sha256(path)
            if digest in tool_hashes:
                same_as_tool += 1
                continue
            if digest in seen_hashes:
                dup += 1
                continue
            seen_hashes.add(digest)
            negatives.append(path)

    with open(os.path.join(out_dir, "tools.list"), "w") as f:
        f.writelines(p + "\n" for p in tools)
    with open(os.path.join(out_dir, "negatives.list"), "w") as f:
        f.writelines(p + "\n" for p in negatives)
    print(f"make_lists: {len(tools)} tool ELF files; {len(negatives)} negative ELF files "
          f"({dup} duplicates and {same_as_tool} copies of tool files left out)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
