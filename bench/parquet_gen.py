"""bench/plan-parquet.ts's data: Parquet files of random "image" bytes in Hugging Face's layout,
written straight to S3 (one file built in memory at a time, uploaded with upload_fileobj).

argv[1]: JSON {"endpoint", "bucket", "prefix", "total_mb", "file_mb", "image_kb",
"rows_per_group", "classes", "seed"}; credentials and region from the environment (as the local
stack writes them). Files: <prefix>data/train-0000i-of-0000N.parquet, an `image` struct
{bytes, path}, an int64 `label`, the `huggingface` metadata `datasets` writes, snappy pages (its
default), `rows_per_group` rows per row group (HF writes 100 images per row group). Prints one
JSON line: files, rows, row groups, bytes written.
"""

import io
import json
import os
import sys

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import args, emit  # noqa: E402

A = args()
rng = np.random.default_rng(A["seed"])
image_bytes = A["image_kb"] * 1024
rows_per_file = max(1, A["file_mb"] * 1024 * 1024 // image_bytes)
total_rows = max(1, A["total_mb"] * 1024 * 1024 // image_bytes)
n_files = -(-total_rows // rows_per_file)
names = ["class%d" % i for i in range(A["classes"])]
meta = json.dumps({"info": {"features": {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}}})
image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
s3 = boto3.client("s3", endpoint_url=A["endpoint"])

written = 0
row = 0
groups = 0
for f in range(n_files):
    n = min(rows_per_file, total_rows - row)
    images = [{"bytes": rng.bytes(image_bytes), "path": "%08d.jpg" % (row + i)} for i in range(n)]
    labels = rng.integers(0, len(names), n)
    table = pa.table({"image": pa.array(images, image_type), "label": pa.array(labels, pa.int64())})
    table = table.replace_schema_metadata({"huggingface": meta})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=A["rows_per_group"], compression="snappy")
    del images, table
    written += buf.tell()
    buf.seek(0)
    key = "%sdata/train-%05d-of-%05d.parquet" % (A["prefix"], f, n_files)
    s3.upload_fileobj(buf, A["bucket"], key)
    row += n
    groups += -(-n // A["rows_per_group"])
emit({"files": n_files, "rows": total_rows, "row_groups": groups, "bytes": written})
