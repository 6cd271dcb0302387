"""The `openraft-fast` console script (`openraft_fast.cli.main:main`; `python -m openraft_fast.cli`).

- main: the parser and the dispatch to one module per command;
- bench: `bench`; serve: `serve`; ops: `cluster` and `kv`; demo: `demo`;
- args: argument parsing every command shares.
"""
