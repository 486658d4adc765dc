from sutra_control.main import main

raise SystemExit(main())
