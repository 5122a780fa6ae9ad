#!/usr/bin/env python3
"""Reads clipeval embedding shards with pyarrow and DuckDB, as outside tools would, and checks them.

  python infra/checks/check_shards.py EXPECTED_JSON shard.arrow [shard.arrow ...]

EXPECTED_JSON: {"rows": total rows, "dim": embedding width, "bundle_hash": "..."}. Exits non-zero
with a message on the first problem.
"""

import json
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

SCHEMA = [
    ("key", pa.utf8()),
    ("image_id", pa.utf8()),
    ("label", pa.int32()),
    ("split", pa.dictionary(pa.int8(), pa.utf8())),
    ("view", pa.int16()),
]


def main() -> int:
    expected = json.loads(sys.argv[1])
    total = 0
    for path in sys.argv[2:]:
        with pa.memory_map(path) as source:
            table = ipc.open_file(source).read_all()
        for name, typ in SCHEMA:
            assert table.schema.field(name).type == typ, f"{path}: {name} is {table.schema.field(name).type}, expected {typ}"
        emb_type = table.schema.field("embedding").type
        assert pa.types.is_fixed_size_list(emb_type) and emb_type.list_size == expected["dim"], f"{path}: embedding is {emb_type}"
        assert emb_type.value_type == pa.float32(), f"{path}: embedding values are {emb_type.value_type}"
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        assert meta.get("clipeval.bundle_hash") == expected["bundle_hash"], f"{path}: bundle hash {meta.get('clipeval.bundle_hash')}"
        emb = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(-1, expected["dim"])
        norms = np.linalg.norm(emb, axis=1)
        assert np.all(np.abs(norms - 1) < 1e-4), f"{path}: embedding norms {norms.min()}..{norms.max()}"
        assert set(table.column("split").to_pylist()) <= {"train", "val", "test"}, f"{path}: splits"
        # DuckDB reads the same table (through Arrow) and agrees on the row count.
        shard = table  # noqa: F841  (DuckDB resolves the local Arrow table by its name)
        rows = duckdb.sql("select count(*) from shard").fetchall()[0][0]
        assert rows == table.num_rows, f"{path}: duckdb counts {rows}, pyarrow {table.num_rows}"
        total += table.num_rows
    assert total == expected["rows"], f"rows: {total}, expected {expected['rows']}"
    print(f"ok: {len(sys.argv) - 2} shards, {total} rows, dim {expected['dim']}, unit norms, schema as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
