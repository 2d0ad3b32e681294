from metrics_sync.emulator.server import main

raise SystemExit(main())
