import sys

from openraft_fast.cli.main import main

sys.exit(main())
