#!/usr/bin/env python3
"""Writes an OCI image layout (image-spec 1.0) from directories, one layer each.

    oci_image.py [--level N] [--entrypoint PATH] OUT_DIR TAG LAYER_DIR...

Each LAYER_DIR becomes one gzip-compressed tar layer holding its tree as-is
(owner root:root, a fixed timestamp, so the same input gives the same digests).
OCI whiteouts are written by putting them into the directory: an empty file
named `.wh.NAME` deletes NAME of the lower layers. OUT_DIR is created (it must
not hold a layout already) with oci-layout, index.json (TAG as
org.opencontainers.image.ref.name) and blobs/sha256/. Push it with
`skopeo copy oci:OUT_DIR:TAG docker://...`.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import tarfile
import tempfile

FIXED_MTIME = 1700000000  # 2023-11-14: any fixed time keeps the digests stable


class HashingWriter:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, sink):
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def flush(self):
        if self.sink is not None:
            self.sink.flush()


def normalize(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = FIXED_MTIME
    return info


def write_layer(layer_dir, blobs, level):
    """Tars layer_dir into a gzip blob; returns (descriptor, diff_id, uncompressed size)."""
    fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    with os.fdopen(fd, "wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=level, mtime=0) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for root, dirs, files in os.walk(layer_dir):
                    dirs.sort()
                    for name in sorted(dirs) + sorted(files):
                        path = os.path.join(root, name)
                        arc = os.path.relpath(path, layer_dir)
                        tar.add(path, arcname=arc, recursive=False, filter=normalize)
    digest = "sha256:" + compressed.sha.hexdigest()
    os.rename(tmp, os.path.join(blobs, compressed.sha.hexdigest()))
    desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": compressed.size}
    return desc, "sha256:" + uncompressed.sha.hexdigest(), uncompressed.size


def write_blob(blobs, obj):
    data = json.dumps(obj, indent=None, separators=(",", ":"), sort_keys=True).encode()
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hexd), "wb") as f:
        f.write(data)
    return "sha256:" + hexd, len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", type=int, default=6, help="gzip level (1 = fastest)")
    ap.add_argument("--entrypoint", default=None)
    ap.add_argument("out")
    ap.add_argument("tag")
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()
    if os.path.exists(os.path.join(a.out, "index.json")):
        sys.exit(f"oci_image.py: {a.out} already holds an OCI layout")
    for d in a.layers:
        if not os.path.isdir(d):
            sys.exit(f"oci_image.py: layer directory {d} does not exist")
    blobs = os.path.join(a.out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    descs, diff_ids, history, total = [], [], [], 0
    for d in a.layers:
        desc, diff_id, size = write_layer(d, blobs, a.level)
        descs.append(desc)
        diff_ids.append(diff_id)
        history.append({"created": "2023-11-14T22:13:20Z",
                        "created_by": f"oci_image.py layer {os.path.basename(os.path.normpath(d))}"})
        total += size
        print(f"layer {os.path.basename(os.path.normpath(d))}: {size} bytes uncompressed, "
              f"{desc['size']} compressed, {desc['digest'][:19]}", file=sys.stderr)

    config = {"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    if a.entrypoint:
        config["config"]["Entrypoint"] = [a.entrypoint]
    cdigest, csize = write_blob(blobs, config)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": csize},
                "layers": descs}
    mdigest, msize = write_blob(blobs, manifest)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": mdigest, "size": msize,
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"org.opencontainers.image.ref.name": a.tag}}]}
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(f"{mdigest} {total}")


if __name__ == "__main__":
    main()
