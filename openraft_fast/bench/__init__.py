"""Cluster benchmarks (DESIGN section 6), behind `openraft-fast bench`.

- results: BenchResult rows, the percentile definition, CPU accounting, the table and JSON;
- load: the client loops every cluster bench runs against a writer;
- local: B1/B2/B4, an in-process cluster (memory or WAL stores);
- tcp: B3, one OS process per node on 127.0.0.1; node: our follower process;
- floors: the in-process floor and per-op future ceiling; tcp_floor: the TCP floor;
- peers: other libraries run by the same harness (pysyncobj);
- scale: B6 (voter counts, log length); disk: the disk's own sync rate (B4's floor);
- procs: child processes; profiling: `--profile` under cProfile.

Modules import downwards only (results <- load <- local/tcp <- scale): no cycle.
"""
