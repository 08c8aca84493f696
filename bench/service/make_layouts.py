#!/usr/bin/env python3
"""Writes COUNT small distinct OCI image layouts: OUT/img<i> tagged "v1",
one uncompressed tar layer each (a few files, one unique per image).
usage: make_layouts.py OUT COUNT"""
import hashlib, io, json, os, sys, tarfile


def put(root, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def layer(i):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in [("etc/os-release", b"ID=bench\n"), (f"app/image-{i}.txt", f"image {i}\n".encode() * 64),
                           ("usr/share/doc/readme", b"hashsieve push_200 bench\n" * 32)]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        root = os.path.join(out, f"img{i}")
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        tar = layer(i)
        ldig, lsize = put(root, tar)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [ldig]}}).encode()
        cdig, csize = put(root, config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldig, "size": lsize}]}).encode()
        mdig, msize = put(root, manifest)
        with open(os.path.join(root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                          "digest": mdig, "size": msize,
                                                          "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)


if __name__ == "__main__":
    main()
