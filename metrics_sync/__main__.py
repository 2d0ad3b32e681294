from metrics_sync.cli import main

raise SystemExit(main())
