from metrics_sync.cli.main import main

raise SystemExit(main())
