from keusim.cli import main

raise SystemExit(main())
