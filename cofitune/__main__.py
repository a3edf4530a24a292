from cofitune.cli import main

raise SystemExit(main())
