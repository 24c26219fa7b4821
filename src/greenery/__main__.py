from greenery.cli import main

raise SystemExit(main())
