"""Writes an ImageFolder (split/class/file) as the field stores datasets, with the field's own tools.

- WebDataset in CLIP_benchmark's layout, by webdataset's ShardWriter: <out>/wds/classnames.txt,
  zeroshot_classification_templates.txt, <split>/nshards.txt, <split>/0.tar ... N-1.tar, samples
  s%07d.<ext> + s%07d.cls numbered in the folder's sorted order.
- Parquet in Hugging Face's layout, by pyarrow: <out>/parquet/data/<split>-00000-of-0000N.parquet
  with an `image` struct column (bytes, path), an int64 `label`, the `huggingface` schema metadata
  datasets writes (ClassLabel names) and a README.md card.

Input (JSON on stdin): {"root", "out", "maxcount", "rowGroupSize", "filesPerSplit", "templates"}.
Prints {"samples": {<imagefolder path>: {"wds": <tar path>#<member>, "parquet": [file, row]}}}.
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

args = json.load(sys.stdin)
root, out = args["root"], args["out"]
paths = sorted(
    os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
    for d, _, files in os.walk(root)
    for f in files
)
classes = sorted({p.split("/")[1] for p in paths})
splits = sorted({p.split("/")[0] for p in paths})
samples = {}

wds_root = os.path.join(out, "wds")
os.makedirs(wds_root, exist_ok=True)
with open(os.path.join(wds_root, "classnames.txt"), "w") as f:
    f.write("\n".join(classes) + "\n")
with open(os.path.join(wds_root, "zeroshot_classification_templates.txt"), "w") as f:
    f.write("\n".join(args["templates"]) + "\n")

card = ["---", "dataset_info:", "  features:", "  - name: image", "    dtype: image",
        "  - name: label", "    dtype:", "      class_label:", "        names:"]
card += [f"          '{i}': {c}" for i, c in enumerate(classes)]
card += ["---", "", "A test dataset written by test/helpers/write_formats.py.", ""]
os.makedirs(os.path.join(out, "parquet", "data"), exist_ok=True)
with open(os.path.join(out, "parquet", "README.md"), "w") as f:
    f.write("\n".join(card))
features = {"image": {"_type": "Image"}, "label": {"names": classes, "_type": "ClassLabel"}}
hf_meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
schema = pa.schema(
    [("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())],
    metadata=hf_meta,
)

for split in splits:
    in_split = [p for p in paths if p.split("/")[0] == split]
    os.makedirs(os.path.join(wds_root, split), exist_ok=True)
    pattern = os.path.join(wds_root, split, "%d.tar")
    with wds.ShardWriter(pattern, maxcount=args["maxcount"], verbose=0) as sink:
        for n, p in enumerate(in_split):
            ext = p.rsplit(".", 1)[1].lower()
            with open(os.path.join(root, p), "rb") as f:
                sink.write({"__key__": f"s{n:07d}", ext: f.read(), "cls": classes.index(p.split("/")[1])})
            samples[p] = {"wds": f"{split}/{n // args['maxcount']}.tar#s{n:07d}.{ext}"}
        shards = sink.shard
    with open(os.path.join(wds_root, split, "nshards.txt"), "w") as f:
        f.write(f"{shards}\n")

    files = args["filesPerSplit"]
    per_file = -(-len(in_split) // files)
    for i in range(files):
        rows = in_split[i * per_file : (i + 1) * per_file]
        name = f"data/{split}-{i:05d}-of-{files:05d}.parquet"
        images, labels = [], []
        for r, p in enumerate(rows):
            with open(os.path.join(root, p), "rb") as f:
                images.append({"bytes": f.read(), "path": p.rsplit("/", 1)[1]})
            labels.append(classes.index(p.split("/")[1]))
            samples[p]["parquet"] = [name, r]
        table = pa.Table.from_pylist(
            [{"image": im, "label": lb} for im, lb in zip(images, labels)], schema=schema
        )
        pq.write_table(table, os.path.join(out, "parquet", name), row_group_size=args["rowGroupSize"])

json.dump({"samples": samples, "classes": classes}, sys.stdout)
