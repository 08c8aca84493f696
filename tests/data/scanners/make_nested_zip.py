#!/usr/bin/env python3
"""Writes nested20.zip: a text file zipped 20 times over, one level deeper
than libclamav's default recursion limit (17), for the test that the limit is
reported as a finding instead of a silent "clean"."""
import io
import sys
import zipfile

data = b"hello, innermost file\n"
name = "inner.txt"
for level in range(20):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2026, 11, 22, 0, 0, 0))
        z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    name = "level%02d.zip" % level
out = sys.argv[1] if len(sys.argv) > 1 else "nested20.zip"
with open(out, "wb") as f:
    f.write(data)
