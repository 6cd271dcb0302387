from openraft_fast.testing.sim.cli import main

raise SystemExit(main())
