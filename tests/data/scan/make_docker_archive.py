#!/usr/bin/env python3
"""Writes a `docker save`-style archive from directories, one layer each.

usage: make_docker_archive.py OUT.tar LAYERDIR...

Each LAYERDIR becomes one uncompressed layer tar (sorted, mtime 0, root
owner), so the archive is byte-for-byte reproducible. Whiteouts are written
as they are stored in layers: a file named ".wh.NAME" hides NAME of lower
layers, ".wh..wh..opq" makes its directory opaque.
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def add_tree(tar, root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(dirpath, name)
            arc = name if rel_dir == "." else rel_dir + "/" + name
            info = tar.gettarinfo(full, arcname=arc)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def member(outer, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    outer.addfile(info, io.BytesIO(data))


def main():
    out, layer_dirs = sys.argv[1], sys.argv[2:]
    layers = []
    for d in layer_dirs:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            add_tree(t, d)
        data = buf.getvalue()
        layers.append((hashlib.sha256(data).hexdigest(), data))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h for h, _ in layers]}},
                        sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["test/app:1"],
                            "Layers": [h + "/layer.tar" for h, _ in layers]}]).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as outer:
        for h, data in layers:
            member(outer, h + "/layer.tar", data)
        member(outer, config_name, config)
        member(outer, "manifest.json", manifest)


if __name__ == "__main__":
    main()
