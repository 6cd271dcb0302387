"""Other Raft libraries run by the same harness as ours, on the same machine, in the same run."""
