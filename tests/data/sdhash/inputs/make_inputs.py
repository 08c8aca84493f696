import hashlib
import os
import shutil
import sys


def prng(label: str, n: int) -> bytes:
    """SHA-256 in counter mode: block i = SHA256(label_utf8 + i as 8-byte little-endian)."""
    out = bytearray()
    i = 0
    lab = label.encode()
    while len(out) < n:
        out += hashlib.sha256(lab + i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:n])


def main():
    outdir = sys.argv[1]
    big = "--big" in sys.argv
    os.makedirs(outdir, exist_ok=True)

    def w(name, data):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)

    r = prng("sdhash-vectors/random", 1 << 20)
    w("random_1m.bin", r)
    other = prng("sdhash-vectors/other", 50000)
    w("random_1m_edited.bin", r[:300000] + r[310000:700000] + other + r[700000:])
    w("min_512.bin", r[:512])
    w("tiny_511.bin", r[:511])
    w("zeros_64k.bin", bytes(65536))
    # 8 KiB random followed by 56 KiB of zeros (block-mode sparse-filter cases)
    w("half_sparse_64k.bin", prng("sdhash-vectors/sparse", 8192) + bytes(57344))

    src = "/usr/share/common-licenses/GPL-2"
    text = open(src, "rb").read()
    w("text_gpl2.txt", text)
    cuts = [
        b"  We protect your rights with two steps: (1) copyright the software, and\n"
        b"(2) offer you this license which gives you legal permission to copy,\n"
        b"distribute and/or modify the software.\n\n",
        b"  However, as a\nspecial exception, the source code distributed need not include\n"
        b"anything that is normally distributed (in either source or binary\n"
        b"form) with the major components (compiler, kernel, and so on) of the\n"
        b"operating system on which the executable runs, unless that component\n"
        b"itself accompanies the executable.",
        b"  You may not impose any further\n"
        b"restrictions on the recipients' exercise of the rights granted herein.\n"
        b"You are not responsible for enforcing compliance by third parties to\n"
        b"this License.",
    ]
    edited = text
    for c in cuts:
        assert edited.count(c) == 1, c
        edited = edited.replace(c, b"")
    w("text_gpl2_edited.txt", edited)

    for name, path in [("cat.elf", "/usr/bin/cat"), ("ls.elf", "/usr/bin/ls"),
                       ("dir.elf", "/usr/bin/dir"), ("gpgv.elf", "/usr/bin/gpgv"),
                       ("gpg.elf", "/usr/bin/gpg")]:
        shutil.copyfile(path, os.path.join(outdir, name))

    if big:
        # not stored in the vector folder: regenerate with --big
        w("random_17m.bin", prng("sdhash-vectors/big17", 17 << 20))
        w("random_33m.bin", prng("sdhash-vectors/big33", 33 << 20))


if __name__ == "__main__":
    main()
