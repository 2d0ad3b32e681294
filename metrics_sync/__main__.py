from metrics_sync.cli.launch import main

raise SystemExit(main())
